// One pool of worker threads for the CPU backend: the caller and N-1 workers run each op together, spin-then-park.
package cria.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Runs a task on every thread of the pool at once (the calling thread is thread 0) and returns
 * when all are done. Workers spin briefly between tasks, because ops follow each other within
 * microseconds during a forward pass, then park so an idle engine costs no CPU. Created once per
 * backend; tasks must not allocate.
 */
final class WorkerPool implements AutoCloseable {

    /** A piece of parallel work: thread {@code t} of {@code n} does its share. */
    @FunctionalInterface
    interface Task {
        void run(int t, int n);
    }

    private static final long SPIN_NANOS = 200_000;

    private final int n;
    private final Thread[] workers;
    private volatile Task task;
    private volatile long epoch;
    private final AtomicInteger pending = new AtomicInteger();
    private volatile boolean closed;
    private volatile Throwable failure;

    WorkerPool(int threads) {
        this.n = Math.max(1, threads);
        this.workers = new Thread[n - 1];
        for (int i = 1; i < n; i++) {
            int id = i;
            Thread th = new Thread(() -> loop(id), "cria-cpu-" + i);
            th.setDaemon(true);
            workers[i - 1] = th;
            th.start();
        }
    }

    int threads() {
        return n;
    }

    /** Runs {@code t} on all threads; rethrows the first failure of any of them. */
    void run(Task t) {
        if (n == 1) {
            t.run(0, 1);
            return;
        }
        failure = null;
        task = t;
        pending.set(n - 1);
        epoch++;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        try {
            t.run(0, n);
        } finally {
            while (pending.get() != 0) {
                Thread.onSpinWait();
            }
        }
        Throwable f = failure;
        if (f != null) {
            if (f instanceof RuntimeException re) {
                throw re;
            }
            if (f instanceof Error e) {
                throw e;
            }
            throw new RuntimeException(f);
        }
    }

    private void loop(int id) {
        long seen = 0;
        while (!closed) {
            long start = System.nanoTime();
            while (epoch == seen && !closed) {
                if (System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 1_000_000);
                }
            }
            if (closed) {
                return;
            }
            seen = epoch;
            try {
                task.run(id, n);
            } catch (Throwable e) {
                failure = e;
            } finally {
                pending.decrementAndGet();
            }
        }
    }

    /** Splits [0, total) into n near-equal parts; returns the start of part t (part t ends at start(t + 1)). */
    static int split(int total, int t, int n) {
        return (int) ((long) total * t / n);
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
    }
}
