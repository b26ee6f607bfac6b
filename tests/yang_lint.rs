//! The project's YANG modules are clean under `pyang --lint` and compile in libyang without
//! warnings.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use yang3::context::{Context, ContextFlags};
use yang3::ffi;
use yang3::logging::LogCallback;

fn yang_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("yang")
}

fn pyang_available() {
    let ok = Command::new("pyang")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "pyang is not installed (or not on PATH): run the test command from README.md, \
         which installs it (CI does); this test never skips"
    );
}

fn run_pyang(args: &[&str]) -> String {
    let out = Command::new("pyang")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("running pyang");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && text.is_empty() {
        text = format!("pyang exited with {}", out.status);
    }
    text
}

fn project_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(yang_dir())
        .expect("yang/ directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yang"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_yang_file_is_shipped() {
    let shipped: Vec<&str> = mldhb::yang::sources().iter().map(|s| s.name).collect();
    for file in project_files() {
        let name = file.trim_end_matches(".yang");
        assert!(
            mldhb::yang::PROJECT_MODULES.contains(&name) && shipped.contains(&name),
            "yang/{file} is not embedded by src/yang.rs"
        );
    }
    for entry in std::fs::read_dir(yang_dir().join("ietf")).expect("yang/ietf") {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = file.strip_suffix(".yang") {
            let (name, rev) = stem
                .split_once('@')
                .expect("ietf files are named NAME@REV.yang");
            assert!(
                mldhb::yang::sources()
                    .iter()
                    .any(|s| s.name == name && s.revision == Some(rev)),
                "yang/ietf/{file} is not embedded by src/yang.rs"
            );
        }
    }
}

#[test]
fn pyang_lint_each_module_is_clean() {
    pyang_available();
    let mut failures = Vec::new();
    for file in project_files() {
        let path = format!("yang/{file}");
        let out = run_pyang(&["--lint", "-p", "yang/ietf:yang", &path]);
        if !out.trim().is_empty() {
            failures.push(format!("{path}:\n{out}"));
        }
    }
    assert!(
        failures.is_empty(),
        "pyang --lint reported:\n{}",
        failures.join("\n")
    );
}

#[test]
fn pyang_lint_all_modules_together_is_clean() {
    pyang_available();
    let mut args = vec!["--lint".to_string(), "-p".into(), "yang/ietf".into()];
    args.extend(project_files().into_iter().map(|f| format!("yang/{f}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_pyang(&args);
    assert!(out.trim().is_empty(), "pyang --lint reported:\n{out}");
}

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl LogCallback for Capture {
    fn log<'a>(
        &'a self,
        level: ffi::LY_LOG_LEVEL::Type,
        msg: Option<Cow<'a, str>>,
        _data_path: Option<Cow<'a, str>>,
        schema_path: Option<Cow<'a, str>>,
        _line: u64,
    ) {
        if level <= ffi::LY_LOG_LEVEL::LY_LLWRN {
            let kind = if level == ffi::LY_LOG_LEVEL::LY_LLERR {
                "error"
            } else {
                "warning"
            };
            LOG.lock().unwrap().push(format!(
                "{kind}: {} ({})",
                msg.unwrap_or_default(),
                schema_path.unwrap_or_default()
            ));
        }
    }
}

#[test]
fn libyang_compiles_without_warnings() {
    // The first context switches libyang's logging to "store only"; install the capturing
    // callback afterwards so it stays active for the context under test.
    let first = Context::new(ContextFlags::DISABLE_SEARCHDIRS).expect("empty context");
    first.init_logger(Capture).expect("logger set once");
    first.set_log_level_warn();
    drop(first);

    let ctx = mldhb::yang::new_context();
    let log = LOG.lock().unwrap().clone();
    assert!(
        ctx.is_ok(),
        "libyang failed to compile the modules: {:?}\n{}",
        ctx.err(),
        log.join("\n")
    );
    assert!(log.is_empty(), "libyang reported:\n{}", log.join("\n"));

    let mut ctx = ctx.unwrap();
    for name in mldhb::yang::PROJECT_MODULES {
        assert!(
            ctx.get_module_implemented(name).is_some(),
            "{name} not implemented"
        );
    }

    // The capture is live: a missing module is reported through it.
    assert!(ctx.load_module("mldhb-no-such-module", None, &[]).is_err());
    assert!(
        LOG.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("mldhb-no-such-module")),
        "libyang log capture is not working"
    );
}
