// A one-line progress bar for long jobs (percentage, rate, ETA) on stderr; plain occasional lines when stderr is not a terminal.
package cria.cli;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Progress of a job measured in units (values, bytes, tokens). On a terminal the line is redrawn
 * in place with {@code \r} at most ten times a second; otherwise (a log file, a pipe, a test) a
 * plain line is printed every few seconds, so logs stay short. {@link #add} may be called from
 * any thread. Always end with {@link #finish()}, which prints the final line.
 *
 * <pre>quantize [##########----------]  50.0%  1.20 M/2.40 M values  3.10 M values/s  ETA 0:01  blk.7.ffn_up.weight</pre>
 */
final class Progress {
    private static final long REDRAW_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long LINE_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final int BAR = 20;

    private final PrintWriter out;
    private final String label;
    private final long total;
    private final String unit;
    private final boolean interactive;
    private final LongSupplier clock;
    private final long start;
    private long done;
    private long lastDraw;
    private int lastWidth;
    private String status = "";
    private boolean finished;

    /** A bar on {@code out} for {@code total} units; redrawn in place when {@code interactive}. */
    Progress(PrintWriter out, String label, long total, String unit, boolean interactive) {
        this(out, label, total, unit, interactive, System::nanoTime);
    }

    /** As above with a given nanosecond clock (tests). */
    Progress(PrintWriter out, String label, long total, String unit, boolean interactive, LongSupplier clock) {
        this.out = out;
        this.label = label;
        this.total = Math.max(0, total);
        this.unit = unit;
        this.interactive = interactive;
        this.clock = clock;
        this.start = clock.getAsLong();
        this.lastDraw = start;
    }

    /**
     * True when stderr is a terminal. The {@code cria} launcher tests that in the shell and passes
     * {@code -Dcria.stderr.tty}; without it (Java cannot ask about stderr alone) a console and TERM are the hint.
     */
    static boolean stderrIsTerminal() {
        String told = System.getProperty("cria.stderr.tty");
        if (told != null) {
            return Boolean.parseBoolean(told);
        }
        java.io.Console c = System.console();
        String term = System.getenv("TERM");
        return c != null && c.isTerminal() && term != null && !term.equals("dumb");
    }

    /** Sets the text shown after the numbers (e.g. the item being worked on). */
    synchronized void status(String text) {
        status = text == null ? "" : text;
        maybeDraw();
    }

    /** Records {@code n} more units done. */
    synchronized void add(long n) {
        done = Math.min(total, done + n);
        maybeDraw();
    }

    /** Units done so far. */
    synchronized long done() {
        return done;
    }

    /** Prints the final line (100% when everything was added) and ends it with a newline. */
    synchronized void finish() {
        if (finished) {
            return;
        }
        finished = true;
        draw(clock.getAsLong(), true);
        if (interactive) {
            out.println();
        }
        out.flush();
    }

    private void maybeDraw() {
        if (finished) {
            return;
        }
        long now = clock.getAsLong();
        if (now - lastDraw >= (interactive ? REDRAW_NANOS : LINE_NANOS)) {
            draw(now, false);
        }
    }

    private void draw(long now, boolean last) {
        lastDraw = now;
        String line = line(now, last);
        if (interactive) {
            // pad with spaces to erase the tail of a longer previous line
            int pad = Math.max(0, lastWidth - line.length());
            out.print("\r" + line + " ".repeat(pad));
            lastWidth = line.length();
        } else {
            out.println(line);
        }
        out.flush();
    }

    /** The text of the line at time {@code now}. */
    synchronized String line(long now, boolean last) {
        double frac = total == 0 ? 1 : (double) done / total;
        int filled = (int) Math.round(frac * BAR);
        double secs = Math.max(1e-9, (now - start) / 1e9);
        double rate = done / secs;
        StringBuilder sb = new StringBuilder();
        sb.append(label).append(" [").append("#".repeat(filled)).append("-".repeat(BAR - filled)).append("] ");
        sb.append(String.format(Locale.ROOT, "%5.1f%%  ", frac * 100));
        sb.append(si(done)).append('/').append(si(total)).append(' ').append(unit);
        sb.append("  ").append(si(rate)).append(' ').append(unit).append("/s");
        if (last) {
            sb.append("  in ").append(clock(secs));
        } else if (done > 0 && done < total) {
            sb.append("  ETA ").append(clock((total - done) / rate));
        }
        if (!status.isEmpty() && !last) {
            sb.append("  ").append(status);
        }
        return sb.toString();
    }

    /** 1234567 as "1.23 M". */
    static String si(double v) {
        String[] u = {"", " k", " M", " G", " T"};
        int i = 0;
        while (v >= 1000 && i < u.length - 1) {
            v /= 1000;
            i++;
        }
        return i == 0 ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.2f%s", v, u[i]);
    }

    /** Seconds as m:ss or h:mm:ss. */
    static String clock(double seconds) {
        long s = Math.round(seconds);
        if (s >= 3600) {
            return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
        }
        return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }
}
