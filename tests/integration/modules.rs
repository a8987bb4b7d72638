//! What each backend really imports: every top-level package of the runtime's stdlib zip (read
//! from the zip inside the guest) in the plain and the pre-warmed guest, matplotlib figures
//! saved through the mounted data, every module of the Docker image's list in the image, and
//! the prompt's lists equal to the lists these tests check.

use kaggle_solver::pipeline::generate::{DOCKER_LIST_INTRO, GUEST_LIST_INTRO, system_prompt};
use kaggle_solver::sandbox::wasm::GuestImage::{self, Plain, Prewarmed};
use kaggle_solver::sandbox::{Backend, DockerSandbox, Sandbox, SandboxRequest, backend_modules};
use serde_json::Value;

use crate::support::{docker_sandbox, generous, run_guest};

/// Imports every top-level package of the stdlib zip (a folder holding `__init__.pyc`) and
/// prints, as JSON, the zip's third-party modules (those not in `sys.stdlib_module_names`) and
/// every package that failed to import with its error.
const IMPORT_EVERYTHING: &str = r#"
import importlib
import json
import sys
import zipfile

with zipfile.ZipFile("/usr/local/lib/python315.zip") as z:
    names = z.namelist()
packages = sorted({n.split("/")[0] for n in names if n.count("/") == 1 and n.endswith("/__init__.pyc")})
modules = sorted({n[:-4] for n in names if "/" not in n and n.endswith(".pyc")})
third = [m for m in packages + modules if m not in sys.stdlib_module_names and not m.startswith("_")]
failed = {}
for name in packages:
    try:
        importlib.import_module(name)
    except BaseException as e:
        failed[name] = f"{type(e).__name__}: {e}"
print(json.dumps({"packages": len(packages), "third": third, "failed": failed}))
"#;

/// The runtime's door to a host program: a module of the zip that this host never offers (its
/// `host.call` answers -1), so the prompt does not name it.
const NOT_OFFERED: &str = "host";

/// The list that follows `intro` in the prompt, up to the sentence's end.
fn prompt_list(prompt: &str, intro: &str) -> Vec<String> {
    let start = prompt.find(intro).expect("the prompt has the list") + intro.len();
    let end = start + prompt[start..].find(". ").expect("the list ends");
    prompt[start..end].split(", ").map(str::to_owned).collect()
}

async fn import_everything(guest: GuestImage) {
    let ran = run_guest(guest, IMPORT_EVERYTHING, None, generous()).await;
    assert!(ran.outcome.succeeded(), "{guest:?}: {:#?}", ran.outcome);
    let report: Value = serde_json::from_str(ran.outcome.stdout.trim()).expect("JSON");
    assert!(report["packages"].as_u64() > Some(80), "{report}");
    // curses needs `_curses`, a C terminal library WASI has no build of: the one package of the
    // zip that cannot import in any WASI guest, checked by its exact error so that a runtime
    // that gains it (or loses anything else) fails here.
    assert_eq!(
        report["failed"],
        serde_json::json!({"curses": "ModuleNotFoundError: No module named '_curses'"}),
        "{guest:?}"
    );
    let mut from_zip: Vec<String> = report["third"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m.as_str())
        .filter(|m| *m != NOT_OFFERED)
        .map(str::to_owned)
        .collect();
    from_zip.sort_by_key(|m| m.to_lowercase());
    let listed: Vec<String> = backend_modules(Backend::Wasm)
        .iter()
        .map(|m| (*m).to_owned())
        .collect();
    assert_eq!(
        from_zip, listed,
        "guest-runtime/guest-modules.txt is the zip's"
    );
    assert_eq!(
        prompt_list(&system_prompt(false), GUEST_LIST_INTRO),
        listed,
        "the prompt names the tested list"
    );
}

/// Every third-party module of the guest's list imports: each one below is imported by the
/// script, whose import loop covers packages and top-level modules alike.
async fn import_each_listed(guest: GuestImage) {
    let script = format!(
        "import importlib\nfor name in {:?}:\n    importlib.import_module(name)\nprint('ok')\n",
        backend_modules(Backend::Wasm)
    );
    let ran = run_guest(guest, &script, None, generous()).await;
    assert!(ran.outcome.succeeded(), "{guest:?}: {:#?}", ran.outcome);
    assert_eq!(ran.outcome.stdout, "ok\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_package_of_the_zip_imports_in_the_plain_guest() {
    import_everything(Plain).await;
    import_each_listed(Plain).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_package_of_the_zip_imports_in_the_prewarmed_guest() {
    import_everything(Prewarmed).await;
    import_each_listed(Prewarmed).await;
}

const PLOT: &str = r#"
import matplotlib
import matplotlib.pyplot as plt
import seaborn as sns
import pandas as pd
fig, ax = plt.subplots(figsize=(4, 3))
sns.histplot(pd.DataFrame({"x": [1, 2, 2, 3, 3, 3]}), x="x", ax=ax)
fig.savefig("/output/plot.png")
fig.savefig("/tmp/plot.png")
print(matplotlib.get_backend(), matplotlib.get_data_path(), open("/tmp/plot.png", "rb").read(4))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_matplotlib_figure_is_saved_to_output_in_both_guests() {
    for guest in [Plain, Prewarmed] {
        let ran = run_guest(guest, PLOT, None, generous()).await;
        assert!(ran.outcome.succeeded(), "{guest:?}: {:#?}", ran.outcome);
        assert_eq!(
            ran.outcome.stdout,
            "Agg /usr/local/lib/python315.zip/matplotlib/mpl-data b'\\x89PNG'\n"
        );
        let png = std::fs::read(ran.output.path().join("plot.png")).expect("plot.png");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
            "{guest:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_module_of_the_image_list_imports_in_docker() {
    let sandbox = docker_sandbox().await;
    let script = format!(
        "import importlib\nfor name in {:?}:\n    importlib.import_module(name)\n\
         import catboost, lightgbm, numpy, pandas, sklearn, xgboost\n\
         print(numpy.__version__, pandas.__version__, sklearn.__version__, \
         lightgbm.__version__, catboost.__version__, xgboost.__version__)\n",
        backend_modules(Backend::Docker)
    );
    let output = tempfile::tempdir().expect("tempdir");
    let mut request = SandboxRequest::new(script, output.path(), generous());
    // The image this build pins, whatever `latest` points at on a shared daemon.
    request.docker.image = DockerSandbox::pinned_image();
    let outcome = sandbox.run(request).await.expect("the sandbox runs");
    assert!(outcome.succeeded(), "{outcome:#?}");
    assert_eq!(
        outcome.stdout, "2.4.6 3.0.6 1.9.1 4.7.0 1.2.10 3.2.0\n",
        "the versions of sandbox-fallback/image/requirements.txt"
    );
    assert_eq!(
        prompt_list(&system_prompt(true), DOCKER_LIST_INTRO),
        backend_modules(Backend::Docker),
        "the prompt names the tested list"
    );
}
