// `cria kernels` output: the markdown table, the JSON document and the PNG chart of fraction-of-peak per kernel.
package cria.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.bench.KernelBench;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

/** Pure formatting of {@link KernelBench.Result}s (tested on made-up timings). */
final class KernelReport {
    private KernelReport() {}

    private static String num(double v, String fmt) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, fmt, v);
    }

    /** One progress line for stderr. */
    static String line(KernelBench.Result r) {
        if (!r.ok()) {
            return String.format(Locale.ROOT, "%-9s %-16s %-22s CHECK FAILED: %s", r.family(), r.kernel(), r.shape(), r.failure());
        }
        return String.format(Locale.ROOT, "%-9s %-16s %-22s %9s us  %9s %-7s %6s of peak  (err %s)", r.family(), r.kernel(), r.shape(),
                num(r.medianMs() * 1e3, "%.1f"), num(r.rate(), "%.1f"), r.unit(), num(100 * r.peakFraction(), "%.1f%%"),
                num(r.relErr(), "%.1e"));
    }

    /** The markdown table with the device and the ceilings it was measured against. */
    static String markdown(String device, KernelBench.Peaks peaks, List<KernelBench.Result> results) {
        StringBuilder b = new StringBuilder();
        b.append("Device: ").append(device).append('\n');
        b.append(String.format(Locale.ROOT, "Ceilings measured in this run: copy %s GB/s (read + written), bf16 GEMM %s TFLOP/s (cuBLAS)%n",
                num(peaks.copyGBs(), "%.0f"), num(peaks.gemmTflops(), "%.0f")));
        b.append('\n');
        b.append("| family | kernel | shape | check (rel. err.) | median time | rate | of peak |\n");
        b.append("| --- | --- | --- | --- | ---: | ---: | ---: |\n");
        for (KernelBench.Result r : results) {
            String check = r.ok() ? "ok (" + num(r.relErr(), "%.1e") + ")" : "FAILED: " + r.failure().replace("|", "/");
            b.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s |%n", r.family(), r.kernel(), r.shape(), check,
                    r.ok() ? num(r.medianMs() * 1e3, "%.1f") + " us" : "-", r.ok() ? num(r.rate(), "%.1f") + " " + r.unit() : "-",
                    r.ok() ? num(100 * r.peakFraction(), "%.1f") + " %" : "-"));
        }
        return b.toString();
    }

    /** The JSON document: device, ceilings, then one object per result. */
    static String json(String device, KernelBench.Peaks peaks, List<KernelBench.Result> results) {
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.put("device", device);
        ObjectNode p = root.putObject("peaks");
        putNum(p, "copy_GBps", peaks.copyGBs());
        putNum(p, "gemm_bf16_TFLOPs", peaks.gemmTflops());
        ArrayNode a = root.putArray("results");
        for (KernelBench.Result r : results) {
            ObjectNode o = a.addObject();
            o.put("family", r.family());
            o.put("kernel", r.kernel());
            o.put("shape", r.shape());
            o.put("check", r.ok() ? "ok" : "failed");
            putNum(o, "rel_err", r.relErr());
            if (!r.ok()) {
                o.put("failure", r.failure());
            }
            putNum(o, "median_us", r.medianMs() * 1e3);
            putNum(o, "rate", r.rate());
            o.put("unit", r.unit());
            putNum(o, "peak_fraction", r.peakFraction());
        }
        return Json.write(root);
    }

    private static void putNum(ObjectNode o, String k, double v) {
        if (Double.isNaN(v) || Double.isInfinite(v)) {
            o.putNull(k);
        } else {
            o.put(k, v);
        }
    }

    /** Writes a bar chart of the percentage of the peak each timed kernel reached. */
    static void png(Path file, String device, List<KernelBench.Result> results) {
        List<String> names = new ArrayList<>();
        List<Double> pct = new ArrayList<>();
        for (KernelBench.Result r : results) {
            if (r.ok() && !Double.isNaN(r.peakFraction())) {
                names.add(r.kernel() + " " + r.shape());
                pct.add(100 * r.peakFraction());
            }
        }
        if (names.isEmpty()) {
            throw new CriaException(file + ": no timed kernel to chart (every check failed or nothing ran)");
        }
        int width = Math.max(800, 40 * names.size() + 200);
        CategoryChart chart = new CategoryChartBuilder().width(width).height(600).title("cria kernels: fraction of peak, " + device)
                .xAxisTitle("kernel and shape").yAxisTitle("% of peak (copy GB/s or bf16 GEMM TFLOP/s)").build();
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setXAxisLabelRotation(90);
        chart.getStyler().setLabelsVisible(true);
        chart.getStyler().setDecimalPattern("#0.0");
        chart.getStyler().setYAxisMin(0.0);
        chart.getStyler().setChartTitleBoxVisible(false);
        chart.getStyler().setPlotGridVerticalLinesVisible(false);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.addSeries("% of peak", names, pct);
        // the exact path given (BitmapEncoder's file-name form would add ".png" and skip our checks)
        OutputFiles.write(file, "--png", OutputFiles.Kind.STREAM, true,
                out -> BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG));
    }
}
