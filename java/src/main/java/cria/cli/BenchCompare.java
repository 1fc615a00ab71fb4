// Compares `cria bench` results with llama-bench's JSON: a ratio table on stdout and a PNG bar chart.
package cria.cli;

import com.fasterxml.jackson.databind.JsonNode;
import cria.CriaException;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

/** Reads llama-bench {@code -o json} output (or Cria's, which has the same fields) and sets it beside Cria's numbers. */
final class BenchCompare {
    private BenchCompare() {}

    /** Mean tokens/s per test name ("pp128", "tg32") over every result in the files. */
    static Map<String, double[]> read(List<Path> files) {
        Map<String, List<Double>> acc = new LinkedHashMap<>();
        for (Path f : files) {
            JsonNode root;
            try {
                root = Json.MAPPER.readTree(Files.readString(f));
            } catch (NoSuchFileException e) {
                throw new CriaException(f + ": no such file");
            } catch (IOException e) {
                throw new CriaException(f + ": not llama-bench or cria bench JSON (" + Main.oneLine(e.getMessage()) + ")");
            }
            if (root == null || !root.isArray()) {
                throw new CriaException(f + ": expected the JSON array llama-bench -o json prints");
            }
            for (JsonNode r : root) {
                int p = r.path("n_prompt").asInt();
                int g = r.path("n_gen").asInt();
                String test = p > 0 && g == 0 ? "pp" + p : g > 0 && p == 0 ? "tg" + g : "pp" + p + "+tg" + g;
                acc.computeIfAbsent(test, k -> new ArrayList<>()).add(r.path("avg_ts").asDouble());
            }
        }
        Map<String, double[]> out = new LinkedHashMap<>();
        acc.forEach((k, v) -> out.put(k, v.stream().mapToDouble(Double::doubleValue).toArray()));
        return out;
    }

    static double mean(double[] a) {
        double s = 0;
        for (double v : a) {
            s += v;
        }
        return a.length == 0 ? Double.NaN : s / a.length;
    }

    /** Prints the table and, when {@code png} is given, writes the chart. */
    static void report(PrintWriter out, String title, Map<String, Double> cria, Map<String, double[]> peer, Path png) {
        out.println();
        out.println("| test | Cria t/s | llama.cpp t/s | Cria / llama.cpp |");
        out.println("| ---- | -------: | ------------: | ---------------: |");
        List<String> tests = new ArrayList<>();
        List<Double> a = new ArrayList<>();
        List<Double> b = new ArrayList<>();
        for (Map.Entry<String, Double> e : cria.entrySet()) {
            double[] p = peer.get(e.getKey());
            double pm = p == null ? Double.NaN : mean(p);
            out.printf(Locale.ROOT, "| %s | %.2f | %s | %s |%n", e.getKey(), e.getValue(),
                    Double.isNaN(pm) ? "-" : String.format(Locale.ROOT, "%.2f", pm),
                    Double.isNaN(pm) ? "-" : String.format(Locale.ROOT, "%.2fx", e.getValue() / pm));
            tests.add(e.getKey());
            a.add(e.getValue());
            b.add(Double.isNaN(pm) ? 0 : pm);
        }
        out.flush();
        if (png != null) {
            CategoryChart chart = new CategoryChartBuilder().width(800).height(450).title(title)
                    .xAxisTitle("test").yAxisTitle("tokens / s").build();
            chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
            chart.getStyler().setLabelsVisible(true);
            chart.getStyler().setDecimalPattern("#,##0.0");
            chart.addSeries("Cria", tests, a);
            chart.addSeries("llama.cpp", tests, b);
            // the exact path given (BitmapEncoder's file-name form would add ".png" and skip our checks)
            OutputFiles.write(png, "--png", OutputFiles.Kind.STREAM,
                    o -> BitmapEncoder.saveBitmap(chart, o, BitmapEncoder.BitmapFormat.PNG));
        }
    }
}
