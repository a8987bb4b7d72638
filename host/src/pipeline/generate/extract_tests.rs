//! Table-driven tests for code extraction: each case is a reply and the script expected from
//! it (or none).

use super::*;

const SCRIPT: &str = "import pandas as pd\n\
train = pd.read_csv('/input/train.csv')\n\
\n\
def fit(df):\n    return df.mean()\n\
\n\
pd.DataFrame({'id': [1]}).to_csv('/output/submission.csv', index=False)\n";

fn cases() -> Vec<(&'static str, String, Option<String>)> {
    let s = SCRIPT;
    let indented: String = s.lines().map(|l| format!("   {l}\n")).collect();
    vec![
        (
            "only a block",
            format!("```python\n{s}```\n"),
            Some(s.to_owned()),
        ),
        (
            "prose around the code",
            format!("Here is the solution:\n\n```python\n{s}```\n\nIt trains a model. Good luck!"),
            Some(s.to_owned()),
        ),
        (
            "py and upper case",
            format!("```Py\n{s}```"),
            Some(s.to_owned()),
        ),
        (
            "info string with attributes",
            format!("```{{.python title=\"a\"}}\n{s}```"),
            Some(s.to_owned()),
        ),
        (
            "a shell block and the script",
            format!("Install:\n```bash\npip install xgboost\n```\nThen:\n```python\n{s}```\n"),
            Some(s.to_owned()),
        ),
        (
            "a usage note after the script",
            format!("```python\n{s}```\nRun it:\n```python\nexec(open('main.py').read())\n```\n"),
            Some(s.to_owned()),
        ),
        (
            "the larger of two whole scripts",
            format!(
                "```python\nimport os\npd.read_csv('/input/t.csv')\nsubmission.csv\n```\n\
                 ```python\n{s}```"
            ),
            Some(s.to_owned()),
        ),
        (
            "a script in parts is joined",
            "Load:\n```python\nimport pandas as pd\ntrain = pd.read_csv('/input/train.csv')\n```\n\
             Fit:\n```python\nmodel = train.mean()\n```\n\
             Write:\n```python\nmodel.to_frame().to_csv('/output/submission.csv')\n```\n"
                .to_owned(),
            Some(
                "import pandas as pd\ntrain = pd.read_csv('/input/train.csv')\n\n\
                 model = train.mean()\n\nmodel.to_frame().to_csv('/output/submission.csv')\n"
                    .to_owned(),
            ),
        ),
        (
            "parts that are not a script: the largest",
            "```python\nx = 1\n```\n```python\ny = [1, 2, 3]\n```\n".to_owned(),
            Some("y = [1, 2, 3]\n".to_owned()),
        ),
        (
            "an unlabelled fence",
            format!("Code:\n```\n{s}```\n"),
            Some(s.to_owned()),
        ),
        (
            "an unlabelled fence without Python",
            "```\n$ ls /input\n```\n".to_owned(),
            None,
        ),
        (
            "only another language",
            "```json\n{\"a\": 1}\n```".to_owned(),
            None,
        ),
        ("tildes", format!("~~~python\n{s}~~~\n"), Some(s.to_owned())),
        (
            "CRLF line ends",
            format!("Sure:\r\n```python\r\n{}```\r\n", s.replace('\n', "\r\n")),
            Some(s.to_owned()),
        ),
        (
            "unterminated final fence",
            format!("```python\n{s}"),
            Some(s.to_owned()),
        ),
        (
            "cut off mid-line",
            "```python\nimport pandas as pd\ndf = pd.read_csv('/in".to_owned(),
            Some("import pandas as pd\ndf = pd.read_csv('/in\n".to_owned()),
        ),
        (
            "a fence indented in a list",
            format!("1. The script:\n   ```python\n{indented}   ```\n"),
            Some(s.to_owned()),
        ),
        (
            "a longer fence holds a shorter one",
            "````python\nimport pandas as pd\nDOC = '''\n```\n'''\n````\n".to_owned(),
            Some("import pandas as pd\nDOC = '''\n```\n'''\n".to_owned()),
        ),
        (
            "inline backticks are not fences",
            "Use ```python``` blocks, I know.".to_owned(),
            None,
        ),
        (
            "no code at all",
            "I cannot help with that competition.".to_owned(),
            None,
        ),
        ("an empty block", "```python\n\n```".to_owned(), None),
        ("an empty reply", String::new(), None),
        ("a bare script", format!("\n{s}\n"), Some(s.to_owned())),
        (
            "a bare script after a comment",
            format!("# solution\n{s}"),
            Some(format!("# solution\n{s}")),
        ),
        (
            "prose then a bare script",
            format!("Here you go:\n{s}"),
            None,
        ),
        (
            "bare code that writes no submission",
            "import os\nprint(1)\n".to_owned(),
            None,
        ),
    ]
}

#[test]
fn replies_yield_the_expected_script() {
    for (name, reply, want) in cases() {
        assert_eq!(extract_python(&reply), want, "case {name:?}:\n{reply}");
    }
}

#[test]
fn fences_are_recognised() {
    let fence = opening_fence("  ~~~~ py3").expect("a fence");
    assert_eq!(
        (fence.indent, fence.ch, fence.len, fence.lang),
        (2, '~', 4, Lang::Python)
    );
    assert!(opening_fence("``").is_none());
    assert!(opening_fence("text ```python").is_none());
    assert_eq!(opening_fence("```text").map(|f| f.lang), Some(Lang::Other));
    assert!(closes(
        "  ```  ",
        &opening_fence("```python").expect("a fence")
    ));
    assert!(!closes("``", &opening_fence("```python").expect("a fence")));
    assert!(!closes(
        "```python",
        &opening_fence("```python").expect("a fence")
    ));
    assert!(!closes("~~~", &opening_fence("```").expect("a fence")));
}
