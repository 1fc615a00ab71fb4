// Classification metrics from a confusion matrix: accuracy, per-class precision/recall/F1, macro-F1; markdown and JSON forms.
package cria.train;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Locale;

/**
 * The scores of a classifier on labelled examples, from its confusion matrix ({@code confusion[t][p]}:
 * examples whose true label is {@code t} that were predicted {@code p}; rows are true labels,
 * columns predictions).
 *
 * <ul>
 * <li>accuracy: the share of examples predicted right (0 for no examples);
 * <li>precision of a class: right predictions of it over all predictions of it; a class never
 *     predicted has precision 0 by convention (there is no prediction to be right);
 * <li>recall of a class: right predictions of it over its examples; 0 for a class with no examples;
 * <li>F1: the harmonic mean of the two, 0 when both are 0;
 * <li>macro-F1: the mean F1 over the classes that occur, as a true label or a prediction (a class
 *     of the label set that neither occurs nor is predicted is left out, not counted as 0).
 * </ul>
 * Immutable.
 */
public final class ClassificationReport {
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    private final List<String> labels;
    private final long[][] confusion;

    /**
     * A report from a confusion matrix over {@code labels} (copied).
     *
     * @throws IllegalArgumentException when the matrix is not labels × labels or has a negative count
     */
    public ClassificationReport(List<String> labels, long[][] confusion) {
        this.labels = List.copyOf(labels);
        int n = labels.size();
        if (confusion.length != n) {
            throw new IllegalArgumentException("a confusion matrix of " + confusion.length + " rows for " + n + " labels");
        }
        this.confusion = new long[n][];
        for (int t = 0; t < n; t++) {
            if (confusion[t].length != n) {
                throw new IllegalArgumentException("row " + t + " of the confusion matrix has " + confusion[t].length + " columns, not " + n);
            }
            for (long c : confusion[t]) {
                if (c < 0) {
                    throw new IllegalArgumentException("negative count in the confusion matrix");
                }
            }
            this.confusion[t] = confusion[t].clone();
        }
    }

    /** A report from the true and predicted label indices of each example (into {@code labels}). */
    public static ClassificationReport of(List<String> labels, int[] truth, int[] predicted) {
        if (truth.length != predicted.length) {
            throw new IllegalArgumentException(truth.length + " true labels but " + predicted.length + " predictions");
        }
        long[][] m = new long[labels.size()][labels.size()];
        for (int i = 0; i < truth.length; i++) {
            m[truth[i]][predicted[i]]++;
        }
        return new ClassificationReport(labels, m);
    }

    /** A report from the true and predicted labels as strings, each one of {@code labels}. */
    public static ClassificationReport ofNames(List<String> labels, List<String> truth, List<String> predicted) {
        return of(labels, indices(labels, truth), indices(labels, predicted));
    }

    private static int[] indices(List<String> labels, List<String> names) {
        int[] out = new int[names.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = labels.indexOf(names.get(i));
            if (out[i] < 0) {
                throw new IllegalArgumentException("'" + names.get(i) + "' is not one of the labels " + labels);
            }
        }
        return out;
    }

    /** The labels, in the order of the matrix's rows and columns. */
    public List<String> labels() {
        return labels;
    }

    /** A copy of the confusion matrix: rows true labels, columns predictions. */
    public long[][] confusion() {
        long[][] out = new long[confusion.length][];
        for (int i = 0; i < out.length; i++) {
            out[i] = confusion[i].clone();
        }
        return out;
    }

    /** Number of examples. */
    public long count() {
        long n = 0;
        for (long[] row : confusion) {
            for (long c : row) {
                n += c;
            }
        }
        return n;
    }

    /** Examples predicted right. */
    public long correct() {
        long n = 0;
        for (int c = 0; c < confusion.length; c++) {
            n += confusion[c][c];
        }
        return n;
    }

    /** The share of examples predicted right; 0 for none. */
    public double accuracy() {
        long n = count();
        return n == 0 ? 0 : (double) correct() / n;
    }

    /** Examples whose true label is class {@code c}. */
    public long support(int c) {
        long n = 0;
        for (long v : confusion[c]) {
            n += v;
        }
        return n;
    }

    /** Examples predicted as class {@code c}. */
    public long predicted(int c) {
        long n = 0;
        for (long[] row : confusion) {
            n += row[c];
        }
        return n;
    }

    /** Right predictions of {@code c} over all predictions of {@code c}; 0 when {@code c} is never predicted. */
    public double precision(int c) {
        long p = predicted(c);
        return p == 0 ? 0 : (double) confusion[c][c] / p;
    }

    /** Right predictions of {@code c} over the examples of {@code c}; 0 when there are none. */
    public double recall(int c) {
        long s = support(c);
        return s == 0 ? 0 : (double) confusion[c][c] / s;
    }

    /** The harmonic mean of precision and recall; 0 when both are 0. */
    public double f1(int c) {
        double p = precision(c);
        double r = recall(c);
        return p + r == 0 ? 0 : 2 * p * r / (p + r);
    }

    /** Whether class {@code c} occurs as a true label or a prediction (the classes macro averages count). */
    public boolean occurs(int c) {
        return support(c) > 0 || predicted(c) > 0;
    }

    /** The mean F1 over the classes that occur; 0 when none does. */
    public double macroF1() {
        return macro(2);
    }

    /** The mean precision over the classes that occur. */
    public double macroPrecision() {
        return macro(0);
    }

    /** The mean recall over the classes that occur. */
    public double macroRecall() {
        return macro(1);
    }

    private double macro(int which) {
        double sum = 0;
        int n = 0;
        for (int c = 0; c < labels.size(); c++) {
            if (occurs(c)) {
                sum += which == 0 ? precision(c) : which == 1 ? recall(c) : f1(c);
                n++;
            }
        }
        return n == 0 ? 0 : sum / n;
    }

    /**
     * The per-class scores as a markdown table (class, precision, recall, F1, support) ending with
     * the macro average, numbers with three decimals.
     */
    public String markdown() {
        StringBuilder sb = new StringBuilder("| class | precision | recall | F1 | support |\n|:--|--:|--:|--:|--:|\n");
        for (int c = 0; c < labels.size(); c++) {
            sb.append("| ").append(cell(labels.get(c))).append(" | ").append(num(precision(c))).append(" | ").append(num(recall(c)))
                    .append(" | ").append(num(f1(c))).append(" | ").append(support(c)).append(" |\n");
        }
        sb.append("| macro average | ").append(num(macroPrecision())).append(" | ").append(num(macroRecall())).append(" | ")
                .append(num(macroF1())).append(" | ").append(count()).append(" |\n");
        return sb.toString();
    }

    /** The confusion matrix as a markdown table: a row per true label, a column per prediction. */
    public String markdownConfusion() {
        StringBuilder sb = new StringBuilder("| true \\ predicted |");
        for (String l : labels) {
            sb.append(' ').append(cell(l)).append(" |");
        }
        sb.append("\n|:--|").append("--:|".repeat(labels.size())).append('\n');
        for (int t = 0; t < labels.size(); t++) {
            sb.append("| ").append(cell(labels.get(t))).append(" |");
            for (long v : confusion[t]) {
                sb.append(' ').append(v).append(" |");
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    /**
     * The report as JSON: {@code count}, {@code correct}, {@code accuracy}, {@code macro_f1},
     * {@code macro_precision}, {@code macro_recall}, {@code labels}, {@code classes} (per label:
     * {@code label, precision, recall, f1, support, predicted}) and {@code confusion} (rows true labels).
     */
    public ObjectNode toJson() {
        ObjectNode o = F.objectNode();
        o.put("count", count());
        o.put("correct", correct());
        o.put("accuracy", accuracy());
        o.put("macro_f1", macroF1());
        o.put("macro_precision", macroPrecision());
        o.put("macro_recall", macroRecall());
        ArrayNode ls = o.putArray("labels");
        labels.forEach(ls::add);
        ArrayNode classes = o.putArray("classes");
        for (int c = 0; c < labels.size(); c++) {
            ObjectNode k = classes.addObject();
            k.put("label", labels.get(c));
            k.put("precision", precision(c));
            k.put("recall", recall(c));
            k.put("f1", f1(c));
            k.put("support", support(c));
            k.put("predicted", predicted(c));
        }
        ArrayNode m = o.putArray("confusion");
        for (long[] row : confusion) {
            ArrayNode r = m.addArray();
            for (long v : row) {
                r.add(v);
            }
        }
        return o;
    }

    /** Whether a generated text matches its reference: equal after trimming whitespace at both ends. */
    public static boolean exactMatch(String reference, String output) {
        return reference.strip().equals(output.strip());
    }

    /** The share of outputs that {@link #exactMatch match} their references; 0 for none. */
    public static double exactMatchRate(List<String> references, List<String> outputs) {
        if (references.size() != outputs.size()) {
            throw new IllegalArgumentException(references.size() + " references but " + outputs.size() + " outputs");
        }
        int n = 0;
        for (int i = 0; i < references.size(); i++) {
            n += exactMatch(references.get(i), outputs.get(i)) ? 1 : 0;
        }
        return references.isEmpty() ? 0 : (double) n / references.size();
    }

    private static String num(double v) {
        return String.format(Locale.ROOT, "%.3f", v);
    }

    // A label inside a markdown cell: pipes escaped, line breaks as spaces.
    static String cell(String s) {
        return s.replace("|", "\\|").replace('\n', ' ').replace('\r', ' ');
    }
}
