//! Finding the Python script in an LLM's reply.
//!
//! Models are asked for one ```python block, but replies vary: prose around the block, several
//! blocks (a shell command, the script, a usage note), a script split into parts, a block
//! without a language, `~~~` fences, CRLF line ends, fences indented inside a list, or a reply
//! cut off before its closing fence. This module picks the script out of all of these, and
//! refuses a reply that holds no code rather than running prose.

/// One fenced block of the reply.
#[derive(Debug)]
struct Block {
    lang: Lang,
    body: String,
}

/// What a block's info string says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Unlabelled,
    Other,
}

/// An opening fence: its indentation, character, length and language.
#[derive(Debug)]
struct Fence {
    indent: usize,
    ch: char,
    len: usize,
    lang: Lang,
}

/// The Python script in `reply`, or `None` when it holds none.
///
/// Fenced blocks marked `python`/`py` are preferred; unlabelled blocks count when they look like
/// Python. Among them, the largest block that is a whole script (reads the input, writes
/// `submission.csv`) wins; when none is whole but all of them together are, they are joined in
/// order; otherwise the largest block is taken. A reply without any fence is accepted only when
/// it reads as a plain Python script.
pub fn extract_python(reply: &str) -> Option<String> {
    let text = reply.replace("\r\n", "\n").replace('\r', "\n");
    let (blocks, fenced) = fenced_blocks(&text);
    if !fenced {
        return is_bare_script(&text).then(|| tidy(&text)).flatten();
    }
    let mut candidates: Vec<&str> = blocks
        .iter()
        .filter(|b| b.lang == Lang::Python)
        .map(|b| b.body.as_str())
        .collect();
    if candidates.is_empty() {
        candidates = blocks
            .iter()
            .filter(|b| b.lang == Lang::Unlabelled && has_import(&b.body))
            .map(|b| b.body.as_str())
            .collect();
    }
    candidates.retain(|body| !body.trim().is_empty());
    let largest =
        |bodies: &mut dyn Iterator<Item = &str>| bodies.max_by_key(|b| b.len()).map(str::to_owned);
    let chosen = if let Some(whole) =
        largest(&mut candidates.iter().copied().filter(|b| is_whole_script(b)))
    {
        whole
    } else if candidates.len() > 1 && is_whole_script(&candidates.join("\n")) {
        candidates.join("\n\n")
    } else {
        largest(&mut candidates.iter().copied())?
    };
    tidy(&chosen)
}

/// The reply's fenced blocks, and whether it had any fence at all.
fn fenced_blocks(text: &str) -> (Vec<Block>, bool) {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut blocks = Vec::new();
    let mut fenced = false;
    let mut i = 0;
    while i < lines.len() {
        let Some(fence) = opening_fence(lines[i]) else {
            i += 1;
            continue;
        };
        fenced = true;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && !closes(lines[i], &fence) {
            body.push(dedent(lines[i], fence.indent));
            i += 1;
        }
        i += 1; // the closing fence, or past the end when the reply was cut off
        blocks.push(Block {
            lang: fence.lang,
            body: body.join("\n"),
        });
    }
    (blocks, fenced)
}

/// Parses a line as an opening fence: three or more backticks or tildes, then an info string
/// (a backtick fence's info string may hold no backtick, so inline code is not a fence).
fn opening_fence(line: &str) -> Option<Fence> {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let ch = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = trimmed.chars().take_while(|c| *c == ch).count();
    if len < 3 {
        return None;
    }
    let info = trimmed[len..].trim();
    if ch == '`' && info.contains('`') {
        return None;
    }
    let word = info
        .trim_start_matches(['{', '.'])
        .split(|c: char| c.is_whitespace() || c == '}' || c == ',')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let lang = match word.as_str() {
        "" => Lang::Unlabelled,
        "python" | "python3" | "py" | "py3" | "ipython" | "ipython3" => Lang::Python,
        _ => Lang::Other,
    };
    Some(Fence {
        indent,
        ch,
        len,
        lang,
    })
}

/// Whether `line` closes `fence`: the same character, at least as many, nothing after.
fn closes(line: &str, fence: &Fence) -> bool {
    let trimmed = line.trim();
    let run = trimmed.chars().take_while(|c| *c == fence.ch).count();
    run >= fence.len && run == trimmed.chars().count()
}

/// `line` without up to `indent` leading whitespace characters (a fence indented inside a list
/// indents its code by as much).
fn dedent(line: &str, indent: usize) -> &str {
    let strip = line
        .char_indices()
        .take(indent)
        .take_while(|(_, c)| *c == ' ' || *c == '\t')
        .count();
    &line[strip..]
}

fn has_import(code: &str) -> bool {
    code.lines().map(str::trim_start).any(|line| {
        line.starts_with("import ") || (line.starts_with("from ") && line.contains(" import "))
    })
}

/// Whether `code` is a whole pipeline: imports, reads the input, writes the submission.
fn is_whole_script(code: &str) -> bool {
    has_import(code)
        && code.contains("submission.csv")
        && (code.contains("/input") || code.contains("read_csv"))
}

/// Whether an unfenced reply is a plain script: it starts like Python (not like prose),
/// imports something and writes the submission.
fn is_bare_script(text: &str) -> bool {
    let Some(first) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return false;
    };
    let pythonic_start = [
        "import ",
        "from ",
        "#",
        "\"\"\"",
        "'''",
        "def ",
        "class ",
        "if __name__",
    ]
    .iter()
    .any(|p| first.starts_with(p));
    pythonic_start && has_import(text) && text.contains("submission.csv")
}

/// Drops leading blank lines and trailing whitespace, ends with one newline; `None` if empty.
fn tidy(code: &str) -> Option<String> {
    let start = code
        .split_inclusive('\n')
        .take_while(|l| l.trim().is_empty())
        .map(str::len)
        .sum::<usize>();
    let body = code[start..].trim_end();
    (!body.is_empty()).then(|| format!("{body}\n"))
}

#[cfg(test)]
mod tests {
    // Table-driven tests for code extraction: each case is a reply and the script expected from
    // it (or none).

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
}
