// The PNG charts of `cria compare`: perplexity against file size, and speed (tg, pp) against file size, each point labelled with its model.
package cria.cli;

import cria.optimize.CompareReport;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** Draws the comparison's scatter charts with xchart; the paths are checked before the models run. */
final class CompareCharts {
    private CompareCharts() {}

    /** The perplexity chart for {@code prefix}: an existing folder gets compare-ppl.png inside, else PREFIX-ppl.png. */
    static Path pplPath(Path prefix) {
        return path(prefix, "ppl");
    }

    /** The speed chart's path, as {@link #pplPath}. */
    static Path speedPath(Path prefix) {
        return path(prefix, "speed");
    }

    private static Path path(Path prefix, String what) {
        if (Files.isDirectory(prefix)) {
            return prefix.resolve("compare-" + what + ".png");
        }
        return prefix.resolveSibling(prefix.getFileName() + "-" + what + ".png");
    }

    /** Perplexity (y) against file size in MiB (x), one labelled point per model. */
    static void writePerplexity(Path png, String title, List<CompareReport.Row> rows) {
        XYChart chart = chart(title, "perplexity");
        List<Double> x = new ArrayList<>();
        List<Double> y = new ArrayList<>();
        for (CompareReport.Row r : rows) {
            x.add(mib(r));
            y.add(r.ppl());
        }
        scatter(chart, "perplexity", x, y);
        chart.getStyler().setLegendVisible(false); // one series, every point labelled
        label(chart, rows, x, y);
        write(png, chart);
    }

    /** Generation and prompt speed (y, tokens/s, logarithmic) against file size in MiB (x). */
    static void writeSpeed(Path png, String title, List<CompareReport.Row> rows, int pp, int tg) {
        XYChart chart = chart(title, "tokens / s");
        chart.getStyler().setYAxisLogarithmic(true);
        List<Double> x = new ArrayList<>();
        for (CompareReport.Row r : rows) {
            x.add(mib(r));
        }
        if (tg > 0) {
            List<Double> y = rows.stream().map(CompareReport.Row::tgTs).toList();
            scatter(chart, "tg" + tg, x, y);
            label(chart, rows, x, y);
        }
        if (pp > 0) {
            List<Double> y = rows.stream().map(CompareReport.Row::ppTs).toList();
            scatter(chart, "pp" + pp, x, y);
            label(chart, rows, x, y);
        }
        write(png, chart);
    }

    private static XYChart chart(String title, String yTitle) {
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("file size (MiB)").yAxisTitle(yTitle).build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.getStyler().setMarkerSize(10);
        chart.getStyler().setDecimalPattern("#,##0.###");
        return chart;
    }

    private static void scatter(XYChart chart, String name, List<Double> x, List<Double> y) {
        chart.addSeries(name, x, y).setMarker(SeriesMarkers.CIRCLE);
    }

    /**
     * The model's file name just right of each point. Annotations are placed in data units, so the
     * x axis is widened (from 0) until the longest label fits right of the largest model.
     */
    private static void label(XYChart chart, List<CompareReport.Row> rows, List<Double> x, List<Double> y) {
        java.awt.Font font = chart.getStyler().getAnnotationTextFont();
        java.awt.FontMetrics fm = new java.awt.image.BufferedImage(1, 1, java.awt.image.BufferedImage.TYPE_INT_RGB)
                .createGraphics().getFontMetrics(font);
        double maxX = 0;
        int widest = 0;
        for (int i = 0; i < rows.size(); i++) {
            maxX = Math.max(maxX, x.get(i));
            widest = Math.max(widest, fm.stringWidth(rows.get(i).name()));
        }
        double plot = PLOT_WIDTH;
        // the axis must reach the largest point plus the longest label and a gap: maxX + (widest + 2 GAP) * range / plot <= range
        double range = maxX > 0 ? maxX / Math.max(0.2, 1 - (widest + 2.0 * GAP) / plot) : 1;
        chart.getStyler().setXAxisMin(0.0);
        chart.getStyler().setXAxisMax(range);
        double perPixel = range / plot;
        for (int i = 0; i < rows.size(); i++) {
            if (!Double.isNaN(y.get(i))) {
                // an annotation is centred on its point: shift it right by half its width and a gap
                double cx = x.get(i) + (fm.stringWidth(rows.get(i).name()) / 2.0 + GAP) * perPixel;
                chart.addAnnotation(new AnnotationText(rows.get(i).name(), cx, y.get(i), false));
            }
        }
        chart.getStyler().setAnnotationTextFontColor(java.awt.Color.DARK_GRAY);
    }

    /** Chart size, and the plot area's approximate width inside it (axis labels and margins taken off). */
    private static final int WIDTH = 900;
    private static final int HEIGHT = 560;
    private static final int PLOT_WIDTH = WIDTH - 110;
    private static final int GAP = 8;

    private static double mib(CompareReport.Row r) {
        return r.facts().fileBytes() / 1048576.0;
    }

    private static void write(Path png, XYChart chart) {
        // the exact path given (BitmapEncoder's file-name form would add ".png" and skip our checks)
        OutputFiles.write(png, "--charts", OutputFiles.Kind.FILE,
                o -> BitmapEncoder.saveBitmap(chart, o, BitmapEncoder.BitmapFormat.PNG));
    }
}
