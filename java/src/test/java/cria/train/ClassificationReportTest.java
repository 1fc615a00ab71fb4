// ClassificationReport against hand-computed scores, including a class never predicted and one that never occurs.
package cria.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClassificationReportTest {
    private static final double EPS = 1e-12;

    // truth a a a b b c, predicted a a b b a b: c is never predicted, d never occurs
    private static ClassificationReport sample() {
        return ClassificationReport.ofNames(List.of("a", "b", "c", "d"), List.of("a", "a", "a", "b", "b", "c"),
                List.of("a", "a", "b", "b", "a", "b"));
    }

    @Test
    void scoresAsComputedByHand() {
        ClassificationReport r = sample();
        assertArrayEquals(new long[][] {{2, 1, 0, 0}, {1, 1, 0, 0}, {0, 1, 0, 0}, {0, 0, 0, 0}}, r.confusion(), "rows are true labels");
        assertEquals(6, r.count());
        assertEquals(3, r.correct());
        assertEquals(0.5, r.accuracy(), EPS);
        assertEquals(2.0 / 3, r.precision(0), EPS);
        assertEquals(2.0 / 3, r.recall(0), EPS);
        assertEquals(2.0 / 3, r.f1(0), EPS);
        assertEquals(1.0 / 3, r.precision(1), EPS);
        assertEquals(0.5, r.recall(1), EPS);
        assertEquals(0.4, r.f1(1), EPS);
        assertEquals(0, r.precision(2), "never predicted: precision 0 by convention");
        assertEquals(0, r.recall(2), EPS);
        assertEquals(0, r.f1(2), EPS);
        assertEquals(1, r.support(2));
        assertEquals(0, r.predicted(2));
        assertFalse(r.occurs(3));
        assertEquals((2.0 / 3 + 0.4 + 0) / 3, r.macroF1(), EPS, "over a, b and c; d never occurs");
        assertEquals((2.0 / 3 + 1.0 / 3 + 0) / 3, r.macroPrecision(), EPS);
        assertEquals((2.0 / 3 + 0.5 + 0) / 3, r.macroRecall(), EPS);
    }

    @Test
    void perfectAndEmptyReports() {
        ClassificationReport perfect = ClassificationReport.of(List.of("x", "y"), new int[] {0, 1, 1}, new int[] {0, 1, 1});
        assertEquals(1, perfect.accuracy(), EPS);
        assertEquals(1, perfect.macroF1(), EPS);
        ClassificationReport empty = new ClassificationReport(List.of("x", "y"), new long[2][2]);
        assertEquals(0, empty.accuracy());
        assertEquals(0, empty.macroF1());
        assertThrows(IllegalArgumentException.class, () -> new ClassificationReport(List.of("x", "y"), new long[3][2]));
        assertThrows(IllegalArgumentException.class, () -> ClassificationReport.ofNames(List.of("x"), List.of("x"), List.of("z")));
    }

    @Test
    void markdownTables() {
        ClassificationReport r = ClassificationReport.ofNames(List.of("happy", "s|d"), List.of("happy", "happy", "s|d"),
                List.of("happy", "s|d", "s|d"));
        assertEquals("""
                | class | precision | recall | F1 | support |
                |:--|--:|--:|--:|--:|
                | happy | 1.000 | 0.500 | 0.667 | 2 |
                | s\\|d | 0.500 | 1.000 | 0.667 | 1 |
                | macro average | 0.750 | 0.750 | 0.667 | 3 |
                """, r.markdown());
        assertEquals("""
                | true \\ predicted | happy | s\\|d |
                |:--|--:|--:|
                | happy | 1 | 1 |
                | s\\|d | 0 | 1 |
                """, r.markdownConfusion());
    }

    @Test
    void json() throws Exception {
        JsonNode j = new ObjectMapper().readTree(sample().toJson().toString());
        assertEquals(6, j.get("count").asInt());
        assertEquals(0.5, j.get("accuracy").asDouble(), EPS);
        assertEquals(List.of("a", "b", "c", "d"), List.of(j.get("labels").get(0).asText(), j.get("labels").get(1).asText(),
                j.get("labels").get(2).asText(), j.get("labels").get(3).asText()));
        JsonNode c = j.get("classes").get(2);
        assertEquals("c", c.get("label").asText());
        assertEquals(0, c.get("precision").asDouble());
        assertEquals(1, c.get("support").asInt());
        assertEquals(1, j.get("confusion").get(1).get(0).asInt());
        assertTrue(j.has("macro_f1"));
    }

    @Test
    void exactMatchTrimsWhitespaceOnly() {
        assertTrue(ClassificationReport.exactMatch(" yes", "yes\n"));
        assertFalse(ClassificationReport.exactMatch("yes", "Yes"));
        assertEquals(2.0 / 3, ClassificationReport.exactMatchRate(List.of("a", " b", "c"), List.of("a ", "b", "d")), EPS);
        assertEquals(0, ClassificationReport.exactMatchRate(List.of(), List.of()));
    }
}
