//! The command's process: spawning it so that it cannot outlive the elector, signalling its
//! process group, and reaping it (and, as PID 1, every orphan).
//!
//! - **Own process group** (`setpgid(0, 0)` in the child): SIGTERM and SIGKILL go to the whole
//!   group, so a shell's children stop with the shell.
//! - **Parent-death signal** (`prctl(PR_SET_PDEATHSIG, SIGKILL)` between fork and exec): the
//!   kernel kills the command when the elector dies, even by SIGKILL, an OOM kill or a panic
//!   (the release profile aborts on panic). The signal fires when the *thread* that forked
//!   exits, not the process: the supervisor runs on the election runtime, a current-thread
//!   runtime driven by the main thread, which exits only with the process. After setting it, the
//!   child checks that its parent is still the elector (it may have died before the `prctl`) and
//!   refuses to start otherwise.
//! - **Reaping**: the supervisor calls [`reap`] whenever SIGCHLD arrives (and on a slow timer as
//!   a safety net). As PID 1 (the image's entrypoint), the elector is also the parent of every
//!   orphaned process in the container, so it then reaps every exited child (`waitpid(-1)`),
//!   not just its own; otherwise it waits for its command's PID alone.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    fn of(status: WaitStatus) -> Exit {
        match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            // Neither: stopped or continued, which `waitpid` without WUNTRACED does not report.
            (None, None) => Exit::Code(-1),
        }
    }

    /// The exit code a shell would report: the code, or 128 + the signal.
    pub fn shell_code(self) -> u8 {
        match self {
            Exit::Code(code) => u8::try_from(code & 0xff).unwrap_or(1),
            Exit::Signal(signal) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => write!(f, "signal {signal}"),
        }
    }
}

/// Starts `program` with `args` and the elector's environment plus `env`, stdin from
/// `/dev/null`, stdout and stderr inherited, in its own process group, with SIGKILL as its
/// parent-death signal. Returns its PID (which is also its process group's ID).
pub fn spawn(program: &OsString, args: &[OsString], env: &[(String, String)]) -> io::Result<Pid> {
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .process_group(0);
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // work is allowed; it makes two system calls (prctl and getppid, which rustix issues
    // directly) and allocates nothing, not even on the error path (`io::Error::from_raw_os_error`
    // and rustix's `Errno` conversion build no heap value).
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            if rustix::process::getppid() != Some(parent) {
                // The elector died before the prctl: do not start an orphan.
                return Err(io::Error::from_raw_os_error(
                    rustix::io::Errno::SRCH.raw_os_error(),
                ));
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    // The `std::process::Child` is dropped: that neither kills nor reaps; [`reap`] does.
    let pid = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
    pid.ok_or_else(|| io::Error::other("the spawned command has no valid PID"))
}

/// Sends `signal` to the process group led by `pid`; a group already gone is not an error.
pub fn signal_group(pid: Pid, signal: Signal) -> io::Result<()> {
    match rustix::process::kill_process_group(pid, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Whether this process is PID 1 (the entrypoint of a container), and so the reaper of orphans.
pub fn is_init() -> bool {
    rustix::process::getpid().is_init()
}

/// Collects exited children without blocking and returns the exit of `child`, if it has
/// exited. As PID 1 (`init`), every exited child is reaped; otherwise only `child`.
pub fn reap(child: Option<Pid>, init: bool) -> Option<Exit> {
    let mut ours = None;
    if init {
        // Every zombie in the container is ours to collect.
        while let Ok(Some((pid, status))) = rustix::process::waitpid(None, WaitOptions::NOHANG) {
            if Some(pid) == child {
                ours = Some(Exit::of(status));
            }
        }
        return ours;
    }
    let pid = child?;
    match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
        Ok(Some((_, status))) => Some(Exit::of(status)),
        Ok(None) => None,
        // ECHILD: it is not our child any more (collected elsewhere); count it as gone.
        Err(_) => Some(Exit::Code(-1)),
    }
}
