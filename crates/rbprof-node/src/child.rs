//! Binding of launch mode: a child that the core started and waits for.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use rbprof_core::launch::{Child, ChildExit};

use crate::convert_error;

/// The end of a launched child: `code` after a normal exit, otherwise the
/// number of the signal that killed it.
#[napi(object)]
pub struct NativeExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// A child process started by rbprof, with rbprof's stdin, stdout and
/// stderr. It receives SIGTERM when rbprof dies.
#[napi]
pub struct NativeChild {
    child: Arc<Child>,
}

#[napi]
impl NativeChild {
    /// Starts `command`, a program looked up in `PATH` and its arguments.
    /// Call it on the main thread: the child's parent-death signal follows
    /// the thread that started it. Throws an `Error` with the code
    /// `ERR_LAUNCH_FAILED` when the program cannot be executed.
    #[napi(factory)]
    pub fn launch(env: Env, command: Vec<String>) -> napi::Result<NativeChild> {
        match Child::launch(&command) {
            Ok(child) => Ok(NativeChild {
                child: Arc::new(child),
            }),
            Err(error) => Err(convert_error(&env, error)),
        }
    }

    #[napi(getter)]
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Waits up to `timeoutMs` on a worker thread for the child to end.
    /// Resolves to `null` while it still runs.
    #[napi(ts_return_type = "Promise<NativeExit | null>")]
    pub fn wait(&self, timeout_ms: u32) -> AsyncTask<WaitTask> {
        AsyncTask::new(WaitTask {
            child: Arc::clone(&self.child),
            timeout: Duration::from_millis(timeout_ms.into()),
        })
    }

    /// Sends signal number `signal` to the child, unless it already ended,
    /// or the signal is SIGINT or SIGQUIT and rbprof runs in the terminal's
    /// foreground, where the terminal signaled the child too. Returns
    /// whether the signal was sent.
    #[napi]
    pub fn forward_signal(&self, env: Env, signal: i32) -> napi::Result<bool> {
        self.child
            .forward_signal(signal)
            .map_err(|error| convert_error(&env, error))
    }
}

pub struct WaitTask {
    child: Arc<Child>,
    timeout: Duration,
}

impl Task for WaitTask {
    type Output = Option<ChildExit>;
    type JsValue = Option<NativeExit>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.child.wait(self.timeout))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output.map(|exit| NativeExit {
            code: exit.code,
            signal: exit.signal,
        }))
    }
}
