//! External programs a test may need (`promtool`, ...): there, or the test is skipped with a line
//! on the terminal saying so; under CI (`CI=true`) a missing one fails the test instead, so CI
//! never passes by skipping.
//!
//! The note is written to the process's stderr directly, not through `eprintln!`, which the test
//! runner captures and shows only for failing tests: a skip must be seen in a passing run.

use std::io::Write;

/// What to do about a test's external program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// It is installed: run the test.
    Run,
    /// It is missing outside CI: skip the test, saying so.
    Skip,
    /// It is missing under CI: fail.
    Fail,
}

/// The rule: `installed`, or else skip unless `ci` (the `CI` variable) is `true`.
pub fn need(installed: bool, ci: Option<&str>) -> Need {
    match (installed, ci.map(str::trim)) {
        (true, _) => Need::Run,
        (false, Some(ci)) if ci.eq_ignore_ascii_case("true") || ci == "1" => Need::Fail,
        (false, _) => Need::Skip,
    }
}

/// Whether `program` runs (`program --version`); if not, prints `skipping: <program> not
/// installed (<install>)` and returns false, or panics under CI: for tests.
pub fn installed_or_skip(program: &str, install: &str) -> bool {
    let installed = std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    let ci = std::env::var("CI").ok();
    match need(installed, ci.as_deref()) {
        Need::Run => true,
        Need::Skip => {
            let _ = writeln!(
                std::io::stderr(),
                "skipping: {program} not installed ({install}); CI=true makes it mandatory"
            );
            false
        }
        Need::Fail => panic!("{program} is not installed, and CI requires it: {install}"),
    }
}

/// Asserts that `scripts/check-metrics-lint.sh` (`promtool check metrics`) accepts `exposition`,
/// panicking with promtool's output and the exposition if not. Without promtool it skips like
/// [`installed_or_skip`] (and fails under CI). For the tests of each metrics family.
pub fn assert_metrics_lint_clean(exposition: &str) {
    use std::io::Write as _;
    if !installed_or_skip("promtool", "apt-get install prometheus") {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/check-metrics-lint.sh");
    let mut child = std::process::Command::new(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("running {script}: {error}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(exposition.as_bytes())
            .unwrap_or_else(|error| panic!("writing to {script}: {error}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("waiting for {script}: {error}"));
    assert_eq!(
        output.status.code(),
        Some(0),
        "promtool must accept the exposition; stdout:\n{}\nstderr:\n{}\nexposition:\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_skipped_outside_ci_and_fails_in_ci() {
        assert_eq!(need(true, None), Need::Run);
        assert_eq!(need(true, Some("true")), Need::Run);
        assert_eq!(need(false, None), Need::Skip);
        assert_eq!(need(false, Some("")), Need::Skip);
        assert_eq!(need(false, Some("false")), Need::Skip);
        assert_eq!(need(false, Some("true")), Need::Fail);
        assert_eq!(need(false, Some("TRUE")), Need::Fail);
        assert_eq!(need(false, Some("1")), Need::Fail);
    }
}
