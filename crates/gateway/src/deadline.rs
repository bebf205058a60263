//! Coarse deadlines for upstream attempts and request bodies, kept per worker.
//!
//! Every proxied request waits for its connection under `connect_timeout`
//! and for its response head under `response_timeout` once the request is
//! written ([`guard`], [`Progress`]); a request body's reads wait under
//! `body_timeout`. With tokio's timer such a deadline
//! costs about a thousand instructions per request (an entry inserted into
//! the timer wheel, polled, and removed again), measured with
//! `bench/instructions.sh`. It needs no millisecond precision, so each worker
//! keeps its pending deadlines in a slab instead, and one ticker task per
//! worker looks at them every [`TICK`]: arming and disarming one is a slot
//! taken and given back. A deadline fires between its instant and one tick
//! later.
//!
//! A worker is one thread with a current-thread runtime, and a request never
//! leaves it; the slab is that thread's. On a thread whose ticker is not
//! running, [`Deadline::after`] says so and the caller uses tokio's timer.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

/// How often a worker's ticker looks for expired deadlines.
pub const TICK: Duration = Duration::from_millis(10);

thread_local! {
    static SLAB: RefCell<Slab> = RefCell::new(Slab::new());
}

/// Tells the threads' slabs apart: a deadline only ever touches its own.
static NEXT_SLAB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct Slab {
    id: u64,
    slots: Vec<Slot>,
    free: Vec<usize>,
    live: usize,
    /// A ticker runs on this thread.
    ticking: bool,
    /// The ticker, parked while no deadline is live.
    ticker: Option<Waker>,
}

impl Slab {
    fn new() -> Slab {
        Slab {
            id: NEXT_SLAB.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            ticking: false,
            ticker: None,
        }
    }

    /// The slot of `deadline`, if it is this slab's and still its.
    fn slot(&mut self, deadline: &Deadline) -> Option<&mut Slot> {
        if deadline.slab != self.id {
            return None;
        }
        self.slots
            .get_mut(deadline.slot)
            .filter(|s| s.generation == deadline.generation)
    }
}

struct Slot {
    at: Instant,
    /// Tells a reused slot from the one a `Deadline` was given.
    generation: u32,
    live: bool,
    expired: bool,
    waker: Option<Waker>,
}

/// A deadline on this worker; resolves once it has passed (at the next
/// tick). Dropping it disarms it.
pub struct Deadline {
    slab: u64,
    slot: usize,
    generation: u32,
}

impl Deadline {
    /// A deadline `after` from now, or `None` when no ticker runs on this
    /// thread or the instant is past what the clock can hold (the caller's
    /// fallback, tokio's timer, takes such a duration as "never").
    pub fn after(after: Duration) -> Option<Deadline> {
        let at = Instant::now().checked_add(after)?;
        SLAB.with(|slab| {
            let mut slab = slab.borrow_mut();
            if !slab.ticking {
                return None;
            }
            slab.live += 1;
            if slab.live == 1
                && let Some(ticker) = slab.ticker.take()
            {
                ticker.wake();
            }
            let slot = match slab.free.pop() {
                Some(i) => i,
                None => {
                    slab.slots.push(Slot {
                        at,
                        generation: 0,
                        live: false,
                        expired: false,
                        waker: None,
                    });
                    slab.slots.len() - 1
                }
            };
            let s = &mut slab.slots[slot];
            s.at = at;
            s.generation = s.generation.wrapping_add(1);
            s.live = true;
            s.expired = false;
            s.waker = None;
            let generation = s.generation;
            Some(Deadline {
                slab: slab.id,
                slot,
                generation,
            })
        })
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        SLAB.with(|slab| {
            let mut slab = slab.borrow_mut();
            let Some(slot) = slab.slot(&self) else {
                // Made on another thread (a request never changes threads
                // on a worker): no deadline here rather than a false one.
                debug_assert!(false, "a deadline polled off its worker");
                return Poll::Pending;
            };
            if slot.expired {
                return Poll::Ready(());
            }
            match &slot.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => slot.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        // `try_with`: a deadline may be dropped while the thread ends.
        let _ = SLAB.try_with(|slab| {
            let mut slab = slab.borrow_mut();
            let Some(slot) = slab.slot(self).filter(|s| s.live) else {
                return;
            };
            slot.live = false;
            slot.waker = None;
            slab.free.push(self.slot);
            slab.live -= 1;
        });
    }
}

/// Runs `fut` until it completes (`Some`) or `deadline` passes (`None`).
/// `fut` is pinned by the caller, where it was made: taken by value, it
/// would be stored twice in this future (once as the argument, once
/// pinned), and copied in between.
pub async fn race<F: Future>(mut fut: Pin<&mut F>, mut deadline: Deadline) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match Pin::new(&mut deadline).poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Runs `fut` until it completes (`Some`) or `after` has passed (`None`):
/// on this worker's deadline list, or on tokio's timer where no ticker runs.
pub async fn within<F: Future>(fut: Pin<&mut F>, after: Duration) -> Option<F::Output> {
    match Deadline::after(after) {
        Some(deadline) => race(fut, deadline).await,
        None => tokio::time::timeout(after, fut).await.ok(),
    }
}

/// A timer that can be armed again: a deadline on this worker's list, or
/// tokio's timer where no ticker runs.
pub enum Timer {
    Slab(Deadline),
    Tokio(Pin<Box<tokio::time::Sleep>>),
}

impl Timer {
    pub fn after(after: Duration) -> Timer {
        match Deadline::after(after) {
            Some(deadline) => Timer::Slab(deadline),
            None => Timer::Tokio(Box::pin(tokio::time::sleep(after))),
        }
    }

    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Timer::Slab(deadline) => Pin::new(deadline).poll(cx),
            Timer::Tokio(sleep) => sleep.as_mut().poll(cx),
        }
    }
}

/// Where an upstream attempt stands, as its timers need to know: set by the
/// attempt (and, on the hyper path, by the streamed request body, from the
/// upstream connection's task), read by [`guard`].
///
/// The connect phase is bounded by `connect_timeout`. `response_timeout`
/// starts once the request is written; while its body is still on its way
/// it bounds only the waits on the upstream: a wait on the client is the
/// body's own timer's (`body_timeout`), never counted against the upstream.
#[derive(Debug, Default)]
pub struct Progress {
    /// The phase (low two bits) and how many times the attempt started
    /// over (the rest), so that a restart is seen even when the phases run
    /// through again between two looks.
    state: AtomicU32,
    /// Body pieces handed to the upstream so far.
    moved: AtomicU32,
    /// The body is waiting on the client.
    waiting: AtomicBool,
    /// When the body ended, in ms after [`EPOCH`], when another task says
    /// so ([`Progress::body_ended`]); `u64::MAX` otherwise.
    ended_ms: AtomicU64,
}

/// The phases of an attempt, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Resolving, connecting, TLS: `connect_timeout`.
    Connecting = 0,
    /// Connected, the request (its body) still being written.
    Sending = 1,
    /// The whole request went: `response_timeout` for the head.
    Written = 2,
}

impl Phase {
    /// The phase in a [`Progress`]'s state.
    fn of(state: u32) -> Phase {
        match state & 3 {
            0 => Phase::Connecting,
            1 => Phase::Sending,
            _ => Phase::Written,
        }
    }
}

/// The instant `ended_ms` counts from.
static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

impl Progress {
    pub fn new() -> Progress {
        Progress {
            ended_ms: AtomicU64::new(u64::MAX),
            ..Progress::default()
        }
    }

    /// The attempt starts over (a fresh connection, another target).
    pub fn restart(&self) {
        let restarts = (self.state.load(Relaxed) >> 2).wrapping_add(1);
        self.state.store(restarts << 2, Release);
        self.ended_ms.store(u64::MAX, Relaxed);
    }

    /// Connected (a pooled connection is connected at once).
    pub fn connected(&self) {
        self.advance(Phase::Sending);
    }

    /// The whole request went to the upstream.
    pub fn written(&self) {
        self.advance(Phase::Written);
    }

    /// The request went to the connection: written, unless its body still
    /// streams (and then says when it ends).
    pub fn handed(&self, body_streams: bool) {
        self.advance(if body_streams {
            Phase::Sending
        } else {
            Phase::Written
        });
    }

    /// The streamed body ended, seen from another task than the attempt's:
    /// the instant is kept, for the response deadline to count from it.
    pub fn body_ended(&self) {
        if self.phase() == Phase::Written {
            return;
        }
        let ms = u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.ended_ms.store(ms, Relaxed);
        self.advance(Phase::Written);
    }

    /// A piece of the body went to the upstream.
    pub fn moved(&self) {
        self.moved.fetch_add(1, Relaxed);
    }

    /// The body waits on the client (or stopped waiting).
    pub fn waiting(&self, waiting: bool) {
        self.waiting.store(waiting, Relaxed);
    }

    fn advance(&self, phase: Phase) {
        let state = self.state.load(Relaxed);
        self.state.fetch_max((state & !3) | phase as u32, Release);
    }

    pub fn phase(&self) -> Phase {
        Phase::of(self.state.load(Acquire))
    }

    /// How long from now until `response` after the body ended, when
    /// another task recorded that end.
    fn left_since_end(&self, response: Duration) -> Option<Duration> {
        let ms = self.ended_ms.load(Relaxed);
        if ms == u64::MAX {
            return None;
        }
        let due = EPOCH
            .checked_add(Duration::from_millis(ms))?
            .checked_add(response)?;
        Some(due.saturating_duration_since(Instant::now()))
    }
}

/// Runs an upstream attempt under the timers of its phases (see
/// [`Progress`]): its output, or the phase whose time ran out.
///
/// The timer is armed when the attempt first waits, and again when its
/// phase changes; while a body is on its way, each expiry looks whether it
/// moved or waits on the client, and if so arms again.
pub async fn guard<F: Future>(
    mut fut: Pin<&mut F>,
    progress: &Progress,
    connect: Duration,
    response: Duration,
) -> Result<F::Output, Phase> {
    let mut timer: Option<Timer> = None;
    let mut seen = u32::MAX;
    let mut moved = 0;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        loop {
            let state = progress.state.load(Acquire);
            let phase = Phase::of(state);
            if state != seen || timer.is_none() {
                seen = state;
                moved = progress.moved.load(Relaxed);
                let after = match phase {
                    Phase::Connecting => connect,
                    Phase::Sending => response,
                    Phase::Written => progress.left_since_end(response).unwrap_or(response),
                };
                timer = Some(Timer::after(after));
            }
            let Some(armed) = timer.as_mut() else {
                return Poll::Pending;
            };
            if armed.poll_expired(cx).is_pending() {
                return Poll::Pending;
            }
            // Expired. A body still on its way that moved, or waits on the
            // client, is not the upstream's delay: armed again.
            let now_moved = progress.moved.load(Relaxed);
            let renewed = progress.state.load(Acquire) != seen
                || (phase == Phase::Sending
                    && (now_moved != moved || progress.waiting.load(Relaxed)));
            if !renewed {
                return Poll::Ready(Err(phase));
            }
            timer = None;
        }
    })
    .await
}

/// Starts this worker's ticker: from now on, [`Deadline::after`] works on
/// this thread. Call from within the worker's runtime; the ticker ends with
/// it.
pub fn start_ticker() {
    SLAB.with(|slab| slab.borrow_mut().ticking = true);
    // When the worker's runtime drops this task (run or not), deadlines on
    // this thread stop being offered: a later runtime here may have none.
    let stopped = TickerGuard;
    tokio::spawn(async move {
        let _stopped = stopped;
        loop {
            // Parked while nothing is pending: an idle worker does not tick.
            std::future::poll_fn(|cx| {
                SLAB.with(|slab| {
                    let mut slab = slab.borrow_mut();
                    if slab.live > 0 {
                        Poll::Ready(())
                    } else {
                        slab.ticker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                })
            })
            .await;
            tokio::time::sleep(TICK).await;
            fire(Instant::now());
        }
    });
}

struct TickerGuard;

impl Drop for TickerGuard {
    fn drop(&mut self) {
        let _ = SLAB.try_with(|slab| {
            let mut slab = slab.borrow_mut();
            slab.ticking = false;
            slab.ticker = None;
        });
    }
}

/// Marks the deadlines at or before `now` expired and wakes their tasks.
fn fire(now: Instant) {
    let wakers: Vec<Waker> = SLAB.with(|slab| {
        let mut slab = slab.borrow_mut();
        slab.slots
            .iter_mut()
            .filter(|s| s.live && !s.expired && s.at <= now)
            .filter_map(|s| {
                s.expired = true;
                s.waker.take()
            })
            .collect()
    });
    // Woken outside the borrow: a woken task may run a deadline's drop.
    for w in wakers {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` on a thread of its own, as a worker: a current-thread
    /// runtime (paused clock) with its ticker started.
    fn on_worker<T, F>(test: impl FnOnce() -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: Future<Output = T>,
    {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap()
                .block_on(async {
                    start_ticker();
                    test().await
                })
        })
        .join()
        .unwrap()
    }

    /// Runs `attempt` under `guard` (connect 100 ms, response 300 ms): its
    /// outcome, and when it came.
    async fn guarded(
        progress: &Progress,
        attempt: impl Future<Output = ()>,
    ) -> (Result<(), Phase>, Duration) {
        let start = Instant::now();
        let out = guard(
            std::pin::pin!(attempt),
            progress,
            Duration::from_millis(100),
            Duration::from_millis(300),
        )
        .await;
        (out, start.elapsed())
    }

    fn about(waited: Duration, ms: u64) -> bool {
        let at = Duration::from_millis(ms);
        waited >= at && waited <= at + 2 * TICK
    }

    #[test]
    fn the_connect_has_connect_timeout_and_the_head_response_timeout_from_the_write() {
        on_worker(|| async {
            let p = Progress::new();
            let (out, waited) = guarded(&p, std::future::pending()).await;
            assert_eq!(out, Err(Phase::Connecting));
            assert!(about(waited, 100), "{waited:?}");

            // Connected at 80 ms, written at 150: the head is due at 450.
            let p = Progress::new();
            let attempt = async {
                tokio::time::sleep(Duration::from_millis(80)).await;
                p.connected();
                tokio::time::sleep(Duration::from_millis(70)).await;
                p.written();
                std::future::pending::<()>().await;
            };
            let (out, waited) = guarded(&p, attempt).await;
            assert_eq!(out, Err(Phase::Written));
            assert!(about(waited, 450), "{waited:?}");

            // A head in time is the attempt's outcome.
            let p = Progress::new();
            let attempt = async {
                p.handed(false);
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            assert_eq!(guarded(&p, attempt).await.0, Ok(()));
        });
    }

    #[test]
    fn a_wait_on_the_client_is_not_the_upstream_s_but_a_stuck_upload_is() {
        on_worker(|| async {
            // The client takes a second over its body; the head is due
            // 300 ms after the body went.
            let p = Progress::new();
            let attempt = async {
                p.connected();
                p.waiting(true);
                tokio::time::sleep(Duration::from_millis(1000)).await;
                p.waiting(false);
                p.moved();
                p.written();
                std::future::pending::<()>().await;
            };
            let (out, waited) = guarded(&p, attempt).await;
            assert_eq!(out, Err(Phase::Written));
            assert!(about(waited, 1300), "{waited:?}");

            // The upstream takes nothing more after 50 ms: its wait is
            // bounded by the response timeout (checked each 300 ms).
            let p = Progress::new();
            let attempt = async {
                p.connected();
                tokio::time::sleep(Duration::from_millis(50)).await;
                p.moved();
                std::future::pending::<()>().await;
            };
            let (out, waited) = guarded(&p, attempt).await;
            assert_eq!(out, Err(Phase::Sending));
            assert!(about(waited, 600), "{waited:?}");
        });
    }

    #[test]
    fn a_body_that_ends_in_another_task_starts_the_response_timeout_at_its_end() {
        on_worker(|| async {
            let p = std::sync::Arc::new(Progress::new());
            p.handed(true);
            p.waiting(true);
            let body = p.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                body.waiting(false);
                body.body_ended();
            });
            // Nothing wakes the attempt at the body's end: its timer,
            // renewed while the body waited on the client, finds it.
            let (out, waited) = guarded(&p, std::future::pending()).await;
            assert_eq!(out, Err(Phase::Written));
            assert!(about(waited, 800), "{waited:?}");
        });
    }

    #[test]
    fn a_restart_connects_again_under_connect_timeout() {
        on_worker(|| async {
            let p = Progress::new();
            let attempt = async {
                p.handed(false);
                tokio::time::sleep(Duration::from_millis(200)).await;
                // The pooled connection had closed: a fresh one, which
                // never connects.
                p.restart();
                std::future::pending::<()>().await;
            };
            let (out, waited) = guarded(&p, attempt).await;
            assert_eq!(out, Err(Phase::Connecting));
            assert!(about(waited, 300), "{waited:?}");
        });
    }

    #[test]
    fn without_a_ticker_there_is_no_deadline() {
        std::thread::spawn(|| assert!(Deadline::after(Duration::from_secs(1)).is_none()))
            .join()
            .unwrap();
    }

    #[test]
    fn an_instant_past_the_clock_is_no_deadline() {
        on_worker(|| async {
            assert!(Deadline::after(Duration::MAX).is_none());
            assert!(Deadline::after(Duration::from_secs(1)).is_some());
        });
    }

    #[test]
    fn a_stopped_ticker_offers_no_deadlines() {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            runtime.block_on(async { start_ticker() });
            drop(runtime);
            // That runtime and its ticker are gone: this thread has none.
            assert!(Deadline::after(Duration::from_secs(1)).is_none());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_deadline_dropped_on_another_thread_leaves_that_threads_slab_alone() {
        on_worker(|| async {
            let mine = Deadline::after(Duration::from_secs(5)).unwrap();
            // A deadline of another thread's slab, with the same slot and
            // generation as `mine`.
            let foreign = on_worker(|| async { Deadline::after(Duration::from_secs(5)) }).unwrap();
            assert_eq!(
                (foreign.slot, foreign.generation),
                (mine.slot, mine.generation)
            );
            drop(foreign);
            SLAB.with(|slab| assert_eq!(slab.borrow().live, 1));
            drop(mine);
            SLAB.with(|slab| assert_eq!(slab.borrow().live, 0));
        });
    }

    #[test]
    fn a_deadline_fires_within_a_tick_after_its_instant() {
        on_worker(|| async {
            let start = Instant::now();
            let deadline = Deadline::after(Duration::from_millis(55)).unwrap();
            let out = race(std::pin::pin!(std::future::pending::<()>()), deadline).await;
            assert_eq!(out, None);
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(55), "{waited:?}");
            assert!(waited <= Duration::from_millis(55) + TICK, "{waited:?}");
        });
    }

    #[test]
    fn a_future_that_finishes_first_wins_and_its_slot_is_reused() {
        on_worker(|| async {
            for _ in 0..3 {
                let deadline = Deadline::after(Duration::from_secs(5)).unwrap();
                let soon = std::pin::pin!(async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    7
                });
                assert_eq!(race(soon, deadline).await, Some(7));
            }
            SLAB.with(|slab| {
                let slab = slab.borrow();
                assert_eq!(slab.live, 0);
                assert_eq!(slab.slots.len(), 1, "one slot, reused");
            });
            // A deadline armed after the worker went idle still fires.
            let late = Deadline::after(Duration::from_millis(30)).unwrap();
            let never = std::pin::pin!(std::future::pending::<()>());
            assert_eq!(race(never, late).await, None);
        });
    }
}
