//! The write lane: on SQLite, the work that holds the one writer connection runs on a thread
//! of its own.
//!
//! SQLite runs each statement on the connection's own thread and wakes the waiting task when
//! it is done. A task woken from outside the runtime joins the back of the runtime's queue, so
//! on a busy server every statement of a write transaction waited behind the HTTP requests of
//! the moment, while the transaction kept the writer (and every other writer) waiting. The
//! lane's thread runs only write work, so a transaction's next statement goes out as soon as
//! the last one is done. PostgreSQL has a pool of writers and no lane.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;

/// A thread with a single-threaded runtime; it stops once the last handle is dropped.
pub struct Lane {
    handle: tokio::runtime::Handle,
    /// Dropped with the lane: the thread's runtime then stops.
    _stop: oneshot::Sender<()>,
}

impl Lane {
    pub fn start() -> std::io::Result<Arc<Lane>> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (started, handle) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("hero-db-writes".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => {
                        let _ = started.send(Ok(runtime.handle().clone()));
                        runtime.block_on(async {
                            let _ = stopped.await;
                        });
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                }
            })?;
        let handle = handle
            .recv()
            .map_err(|_| std::io::Error::other("the write lane's thread ended at once"))??;
        Ok(Arc::new(Lane {
            handle,
            _stop: stop,
        }))
    }

    /// Runs `work` on the lane and waits for it. It runs to the end even when the caller
    /// stops waiting, so a transaction is never cut between two statements.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        match self.handle.spawn(work).await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the lane's runtime stopped, which `self` prevents.
            Err(_) => Err(sqlx::Error::WorkerCrashed.into()),
        }
    }

    /// Starts `task` on the lane, for a task that does nothing but write.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }
}
