// StoryTasks: seeded, balanced, disjoint splits in the corpus's own words; learnable from the words, yet no keyword gives the label away.
package cria.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StoryTasksTest {
    @TempDir
    Path dir;

    private static List<StoryTasks.Labelled> mood(int n, long seed) {
        return StoryTasks.generate("mood", n, seed, new HashSet<>());
    }

    private static Set<String> words(String text) {
        Set<String> out = new TreeSet<>();
        for (String w : text.replace("'s ", " ").split("[^a-z]+")) {
            if (!w.isEmpty()) {
                out.add(w);
            }
        }
        return out;
    }

    @Test
    void seededBalancedAndInTheCorpusWords() {
        assertEquals(mood(60, 3), mood(60, 3));
        assertNotEquals(mood(60, 3), mood(60, 4));
        List<StoryTasks.Labelled> rows = mood(301, 5);
        Map<String, Integer> counts = new HashMap<>();
        Set<String> vocab = StoryCorpus.vocabulary();
        Set<String> unknown = new TreeSet<>();
        for (StoryTasks.Labelled r : rows) {
            counts.merge(r.label(), 1, Integer::sum);
            for (String w : words(r.text())) {
                if (!vocab.contains(w)) {
                    unknown.add(w);
                }
            }
            assertTrue(r.text().split(" ").length <= StoryTasks.MAX_WORDS, r.text());
            assertEquals(r.text().toLowerCase(java.util.Locale.ROOT), r.text());
        }
        assertEquals(Set.of(), unknown, "words the default model's corpus never has");
        assertEquals(Map.of("happy", 101, "sad", 100, "scared", 100), counts);
        assertEquals(List.of("happy", "sad", "scared"), StoryTasks.labels("mood"));
        assertThrows(CriaException.class, () -> StoryTasks.labels("weather"));
    }

    @Test
    void theSplitsOnDiskAreDisjointAndRead() {
        Map<Path, Integer> w = StoryTasks.write("mood", dir, 300, 30, 60, 7);
        assertEquals(List.of(dir.resolve("train.jsonl"), dir.resolve("val.jsonl"), dir.resolve("test.jsonl")), List.copyOf(w.keySet()));
        Set<String> seen = new HashSet<>();
        int total = 0;
        for (Path p : w.keySet()) {
            Examples ex = Examples.read(p, null);
            assertEquals(List.of("happy", "sad", "scared"), ex.labels());
            for (Example e : ex.examples()) {
                assertTrue(seen.add(e.prompt()), "a story in two splits: " + e.prompt());
                total++;
            }
        }
        assertEquals(390, total);
        assertThrows(CriaException.class, () -> StoryTasks.write("mood", dir, 0, 1, 1, 7));
    }

    @Test
    void learnableFromTheWordsButNoKeywordGivesTheLabel() {
        List<StoryTasks.Labelled> train = mood(1500, 11);
        List<StoryTasks.Labelled> test = StoryTasks.generate("mood", 300, 12, new HashSet<>());
        List<String> labels = StoryTasks.labels("mood");
        // a word in most stories of one label and almost only there would be a keyword
        Map<String, int[]> byLabel = new HashMap<>();
        int[] perLabel = new int[labels.size()];
        for (StoryTasks.Labelled r : train) {
            int l = labels.indexOf(r.label());
            perLabel[l]++;
            for (String w : words(r.text())) {
                byLabel.computeIfAbsent(w, k -> new int[labels.size()])[l]++;
            }
        }
        for (Map.Entry<String, int[]> e : byLabel.entrySet()) {
            int all = java.util.Arrays.stream(e.getValue()).sum();
            for (int l = 0; l < labels.size(); l++) {
                double coverage = (double) e.getValue()[l] / perLabel[l];
                double purity = (double) e.getValue()[l] / all;
                assertTrue(purity < 0.9 || coverage < 0.5, "'" + e.getKey() + "' marks " + labels.get(l) + ": in " + coverage
                        + " of its stories, " + purity + " of its uses");
            }
        }
        // multinomial naive Bayes over the words present learns it nonetheless
        int right = 0;
        for (StoryTasks.Labelled r : test) {
            double best = Double.NEGATIVE_INFINITY;
            int pick = -1;
            for (int l = 0; l < labels.size(); l++) {
                double s = 0;
                for (String w : words(r.text())) {
                    int[] c = byLabel.get(w);
                    s += Math.log(((c == null ? 0 : c[l]) + 1.0) / (perLabel[l] + 2.0));
                }
                if (s > best) {
                    best = s;
                    pick = l;
                }
            }
            right += labels.get(pick).equals(r.label()) ? 1 : 0;
        }
        assertTrue(right >= 0.9 * test.size(), "naive Bayes: " + right + "/" + test.size());
    }
}
