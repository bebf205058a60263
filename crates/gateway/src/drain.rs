//! Graceful drain of a worker's client connections.
//!
//! hyper-util's `GracefulShutdown` has each connection poll a watch channel
//! every time the connection's task wakes, a few hundred instructions per
//! request (measured with `bench/instructions.sh`). Draining is rare, so here
//! a connection only reads a flag of its worker when it wakes, and leaves
//! its task's waker in its worker's list; [`drain`] sets the flag and wakes
//! them all.
//!
//! A worker is one thread with a current-thread runtime: its connections,
//! their tasks and its drain all run on that thread, so the list is that
//! thread's.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use hyper_util::server::graceful::GracefulConnection;

thread_local! {
    static CONNS: RefCell<Conns> = RefCell::new(Conns {
        id: NEXT_LIST.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        ..Conns::default()
    });
}

/// Tells the threads' lists apart: a connection only touches its own.
static NEXT_LIST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Default)]
struct Conns {
    id: u64,
    /// The waker of each watched connection's task, by slot.
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
    live: usize,
    draining: bool,
    /// [`drain`], waiting for the last connection to end.
    waiter: Option<Waker>,
}

/// A client connection, woken when its worker drains. The connection
/// itself reads [`draining`] when it wakes and finishes its request in
/// flight before it ends (hyper's connections through [`graceful`]).
pub struct Watched<C> {
    conn: Pin<Box<C>>,
    /// The list (thread) the slot is in.
    list: u64,
    slot: usize,
}

/// Watches `conn` on this worker (call on the worker's thread).
pub fn watch<C: Future>(conn: C) -> Watched<C> {
    let (list, slot) = CONNS.with(|conns| {
        let mut conns = conns.borrow_mut();
        conns.live += 1;
        let slot = match conns.free.pop() {
            Some(slot) => slot,
            None => {
                conns.wakers.push(None);
                conns.wakers.len() - 1
            }
        };
        (conns.id, slot)
    });
    Watched {
        conn: Box::pin(conn),
        list,
        slot,
    }
}

/// Whether this worker is draining.
pub fn draining() -> bool {
    CONNS
        .try_with(|conns| conns.borrow().draining)
        .unwrap_or(false)
}

/// Serves a hyper connection until it ends, shutting it down gracefully
/// once its worker drains: hyper finishes the request in flight, if there
/// is one, and closes. A connection accepted while draining (the listener
/// is closed, but a TLS handshake may finish late) is shut down at once.
pub async fn graceful<C: GracefulConnection>(conn: C) -> Result<(), C::Error> {
    let mut conn = std::pin::pin!(conn);
    let mut shutting_down = false;
    std::future::poll_fn(|cx| {
        if !shutting_down && draining() {
            shutting_down = true;
            conn.as_mut().graceful_shutdown();
        }
        conn.as_mut().poll(cx)
    })
    .await
}

impl<C: Future> Future for Watched<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (list, slot) = (self.list, self.slot);
        CONNS.with(|conns| {
            let mut conns = conns.borrow_mut();
            if conns.id != list {
                // Polled off its worker (a connection never changes threads
                // on one): this thread's list is not its to touch.
                debug_assert!(false, "a connection polled off its worker");
                return;
            }
            match &mut conns.wakers[slot] {
                Some(w) if w.will_wake(cx.waker()) => {}
                other => *other = Some(cx.waker().clone()),
            }
        });
        self.conn.as_mut().poll(cx)
    }
}

impl<C> Drop for Watched<C> {
    fn drop(&mut self) {
        // `try_with`: a connection may be dropped while its thread ends.
        let _ = CONNS.try_with(|conns| {
            let mut conns = conns.borrow_mut();
            if conns.id != self.list {
                return;
            }
            conns.wakers[self.slot] = None;
            conns.free.push(self.slot);
            conns.live -= 1;
            if conns.live == 0
                && let Some(waiter) = conns.waiter.take()
            {
                waiter.wake();
            }
        });
    }
}

/// Tells every connection of this worker to finish its request in flight
/// and close, then waits until all have ended.
pub async fn drain() {
    let wakers: Vec<Waker> = CONNS.with(|conns| {
        let mut conns = conns.borrow_mut();
        conns.draining = true;
        conns.wakers.iter().flatten().cloned().collect()
    });
    for waker in wakers {
        waker.wake();
    }
    std::future::poll_fn(|cx| {
        CONNS.with(|conns| {
            let mut conns = conns.borrow_mut();
            if conns.live == 0 {
                Poll::Ready(())
            } else {
                conns.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    })
    .await;
}
