// Holds back generated text that might be the start of a stop string, and finds complete matches.
package cria.engine;

import java.util.List;

/** Incremental stop-string detection over streamed text. */
final class StopMatcher {
    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();
    private boolean stopped;

    StopMatcher(List<String> stops) {
        this.stops = stops;
    }

    /** Adds text; returns what can be released now (text that cannot start a stop string). */
    String add(String text) {
        if (stopped) {
            return "";
        }
        pending.append(text);
        if (stops.isEmpty()) {
            String out = pending.toString();
            pending.setLength(0);
            return out;
        }
        int cut = -1;
        for (String s : stops) {
            int i = pending.indexOf(s);
            if (i >= 0 && (cut < 0 || i < cut)) {
                cut = i;
            }
        }
        if (cut >= 0) {
            stopped = true;
            String out = pending.substring(0, cut);
            pending.setLength(0);
            return out;
        }
        // keep the longest suffix that is a prefix of some stop string
        int keep = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, pending.length()); k > keep; k--) {
                if (pending.substring(pending.length() - k).equals(s.substring(0, k))) {
                    keep = k;
                    break;
                }
            }
        }
        String out = pending.substring(0, pending.length() - keep);
        pending.delete(0, pending.length() - keep);
        return out;
    }

    /** True once a stop string has matched. */
    boolean stopped() {
        return stopped;
    }

    /** Text still held back (released when generation ends without a match). */
    String flush() {
        String out = pending.toString();
        pending.setLength(0);
        return out;
    }
}
