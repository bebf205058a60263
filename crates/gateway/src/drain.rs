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

/// A client connection that shuts down gracefully when its worker drains.
pub struct Watched<C> {
    conn: Pin<Box<C>>,
    /// The list (thread) the slot is in.
    list: u64,
    slot: usize,
    shutting_down: bool,
}

/// Watches `conn` on this worker (call on the worker's thread).
pub fn watch<C: GracefulConnection>(conn: C) -> Watched<C> {
    let (list, slot, draining) = CONNS.with(|conns| {
        let mut conns = conns.borrow_mut();
        conns.live += 1;
        let slot = match conns.free.pop() {
            Some(slot) => slot,
            None => {
                conns.wakers.push(None);
                conns.wakers.len() - 1
            }
        };
        (conns.id, slot, conns.draining)
    });
    let mut conn = Box::pin(conn);
    // Accepted while draining (the listener is already closed, but the
    // TLS handshake of one may finish late): hyper closes it, after a
    // request already started if there is one.
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    Watched {
        conn,
        list,
        slot,
        shutting_down: draining,
    }
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = Result<(), C::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (list, slot) = (self.list, self.slot);
        let draining = CONNS.with(|conns| {
            let mut conns = conns.borrow_mut();
            if conns.id != list {
                // Polled off its worker (a connection never changes threads
                // on one): this thread's list is not its to touch.
                debug_assert!(false, "a connection polled off its worker");
                return conns.draining;
            }
            match &mut conns.wakers[slot] {
                Some(w) if w.will_wake(cx.waker()) => {}
                other => *other = Some(cx.waker().clone()),
            }
            conns.draining
        });
        if draining && !self.shutting_down {
            self.shutting_down = true;
            self.conn.as_mut().graceful_shutdown();
        }
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
