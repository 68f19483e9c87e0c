//! EventLoop: quit from another thread, queued closures, timers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use net::{EventLoop, EventLoopThread};

#[test]
fn quit_from_another_thread_stops_the_loop() {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut lp = EventLoop::new().unwrap();
        tx.send(lp.handle()).unwrap();
        lp.run(); // blocks with no timers and no sources until quit
    });
    let handle = rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!t.is_finished());
    handle.quit();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(t.is_finished(), "loop did not stop");
    t.join().unwrap();
}

#[test]
fn only_one_loop_per_thread() {
    let _first = EventLoop::new().unwrap();
    assert!(EventLoop::new().is_err());
}

#[test]
fn a_timer_fires_and_a_cancelled_one_does_not() {
    let mut lp = EventLoop::new().unwrap();
    let fired = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let f = fired.clone();
    lp.run_after(Duration::from_millis(50), move |_| {
        f.fetch_add(1, Ordering::SeqCst);
    });
    let c = cancelled.clone();
    let id = lp.run_after(Duration::from_millis(30), move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    lp.cancel(id);
    lp.run_after(Duration::from_millis(200), |lp| lp.quit());
    lp.run();
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert_eq!(cancelled.load(Ordering::SeqCst), 0);
    assert!(start.elapsed() >= Duration::from_millis(200));
}

#[test]
fn run_every_repeats_until_cancelled_from_its_own_callback() {
    let mut lp = EventLoop::new().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let id = Arc::new(parking_lot::Mutex::new(None));
    let id2 = id.clone();
    let timer = lp.run_every(Duration::from_millis(10), move |lp| {
        if c.fetch_add(1, Ordering::SeqCst) + 1 == 5 {
            if let Some(t) = *id2.lock() {
                lp.cancel(t);
            }
        }
    });
    *id.lock() = Some(timer);
    lp.run_after(Duration::from_millis(300), |lp| lp.quit());
    lp.run();
    assert_eq!(count.load(Ordering::SeqCst), 5);
}

#[test]
fn closures_queued_from_other_threads_run_in_order_on_the_loop() {
    let mut thread = EventLoopThread::new("queue-test", None);
    let handle = thread.start_loop().unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..1000 {
        let tx = tx.clone();
        let h = handle.clone();
        handle.queue_in_loop(move |lp| {
            assert!(lp.is_in_loop_thread());
            assert!(h.is_in_loop_thread());
            tx.send(i).unwrap();
        });
    }
    let got: Vec<i32> = (0..1000)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert!(!handle.is_in_loop_thread());
}

#[test]
fn timers_added_from_another_thread_fire_on_the_loop() {
    let mut thread = EventLoopThread::new("timer-test", None);
    let handle = thread.start_loop().unwrap();
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    handle.run_after(Duration::from_millis(20), move |lp| {
        tx.send(("fired", lp.is_in_loop_thread())).unwrap();
    });
    let id = handle.run_after(Duration::from_millis(40), move |_| {
        tx2.send(("cancelled one fired", false)).unwrap();
    });
    handle.cancel(id);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        ("fired", true)
    );
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

/// `stats().busy_time` counts the time a loop works, not the time it waits: an
/// idle loop stays near zero, a closure that works for 300 ms adds at
/// least 300 ms.
#[test]
fn busy_time_counts_work_not_waiting() {
    let mut thread = EventLoopThread::new("busy-test", None);
    let handle = thread.start_loop().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let idle = handle.stats().busy_time;
    assert!(
        idle < Duration::from_millis(100),
        "idle loop busy for {idle:?}"
    );
    let (started_tx, started) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    handle.queue_in_loop(move |_| {
        let _ = started_tx.send(());
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            std::hint::spin_loop();
        }
        let _ = tx.send(());
    });
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    // The iteration under way counts before it ends.
    let midway = handle.stats().busy_time;
    // (Unless a loaded machine kept this thread asleep past the end.)
    let finished = rx.try_recv().is_ok();
    assert!(
        finished || midway >= idle + Duration::from_millis(150),
        "busy {midway:?} half-way through a 300 ms iteration"
    );
    if !finished {
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    // The whole iteration is in the total once it ends, just after the
    // closure.
    let deadline = Instant::now() + Duration::from_secs(10);
    while handle.stats().busy_time < idle + Duration::from_millis(300) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(handle.stats().busy_time >= idle + Duration::from_millis(300));
}

/// `run_in_loop` is muduo's `runInLoop`: at once on the loop's own thread,
/// queued from any other.
#[test]
fn run_in_loop_runs_at_once_on_the_loop_thread_and_queues_elsewhere() {
    let mut lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    handle.run_in_loop(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(ran.load(Ordering::SeqCst), 1, "ran before returning");

    let (h, r) = (handle.clone(), ran.clone());
    std::thread::spawn(move || {
        h.run_in_loop(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
    })
    .join()
    .unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "queued, not run");
    assert_eq!(handle.queue_size(), 1);
    handle.queue_in_loop(|lp| lp.quit());
    lp.run();
    assert_eq!(ran.load(Ordering::SeqCst), 2);
}

/// `stats` counts iterations, closures, wake-ups, channels and timers.
#[test]
fn stats_count_what_the_loop_did() {
    let mut thread = EventLoopThread::new("stats-test", None);
    let handle = thread.start_loop().unwrap();
    let before = handle.stats();
    let (tx, rx) = mpsc::channel();
    for _ in 0..10 {
        let tx = tx.clone();
        handle.queue_in_loop(move |_| {
            let _ = tx.send(());
        });
    }
    let timer = handle.run_after(Duration::from_secs(3600), |_| {});
    for _ in 0..10 {
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = handle.stats();
    while (after.functors_run < before.functors_run + 11 || after.timers < 1)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
        after = handle.stats();
    }
    assert!(after.functors_run >= before.functors_run + 11, "{after:?}");
    assert!(after.iterations > before.iterations, "{after:?}");
    assert!(after.wakeups > before.wakeups, "{after:?}");
    assert_eq!(after.timers, 1, "{after:?}");
    assert_eq!(after.pending_functors, 0, "{after:?}");
    handle.cancel(timer);
}
