// StoryTasks: seeded, balanced, disjoint splits in the corpus's own words; mood is learnable from the words with no keyword, who's answer is the opening name and no simpler rule.
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
        assertThrows(CriaException.class, () -> StoryTasks.labels("who"));
        assertThrows(CriaException.class, () -> StoryTasks.completes("weather"));
        assertEquals(List.of("mood", "who"), StoryTasks.names());
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

    private static List<StoryTasks.Completion> who(int n, long seed) {
        return StoryTasks.completions("who", n, seed, new HashSet<>());
    }

    // The names of a story, in order of mention.
    private static List<String> names(String story) {
        Set<String> all = new HashSet<>(StoryTasks.whoNames());
        List<String> out = new java.util.ArrayList<>();
        for (String w : story.split("[^a-z]+")) {
            if (all.contains(w)) {
                out.add(w);
            }
        }
        return out;
    }

    @Test
    void whoAsksForTheOpeningNameAmongOthers() {
        assertEquals(who(50, 3), who(50, 3));
        assertNotEquals(who(50, 3), who(50, 4));
        assertTrue(StoryTasks.completes("who"));
        assertThrows(CriaException.class, () -> StoryTasks.completions("mood", 3, 1, new HashSet<>()));
        assertThrows(CriaException.class, () -> StoryTasks.generate("who", 3, 1, new HashSet<>()));
        List<StoryTasks.Completion> rows = who(400, 5);
        Set<String> vocab = StoryCorpus.vocabulary();
        Set<String> unknown = new TreeSet<>();
        Map<String, Integer> answers = new HashMap<>();
        int others = 0, notLast = 0, notMostFrequent = 0;
        for (StoryTasks.Completion r : rows) {
            assertTrue(r.prompt().endsWith(StoryTasks.WHO_QUESTION), r.prompt());
            String story = r.prompt().substring(0, r.prompt().length() - StoryTasks.WHO_QUESTION.length());
            assertTrue(story.split(" ").length <= StoryTasks.MAX_WORDS, story);
            assertEquals(story.toLowerCase(java.util.Locale.ROOT), story);
            assertEquals(-1, story.indexOf('\n'), story);
            for (String w : words(story)) {
                if (!vocab.contains(w)) {
                    unknown.add(w);
                }
            }
            List<String> named = names(story);
            String answer = named.get(0); // the story opens with its main character
            assertEquals(" " + answer + ".\n", r.completion(), story);
            answers.merge(answer, 1, Integer::sum);
            others += named.stream().anyMatch(n -> !n.equals(answer)) ? 1 : 0;
            notLast += named.getLast().equals(answer) ? 0 : 1;
            Map<String, Integer> counts = new HashMap<>();
            named.forEach(n -> counts.merge(n, 1, Integer::sum));
            notMostFrequent += counts.entrySet().stream().anyMatch(e -> !e.getKey().equals(answer) && e.getValue() >= counts.get(answer)) ? 1 : 0;
        }
        assertEquals(Set.of(), unknown, "words the default model's corpus never has");
        // balanced over all 40 names: 10 each
        assertEquals(40, StoryTasks.whoNames().size());
        assertEquals(Set.copyOf(StoryTasks.whoNames()), answers.keySet());
        assertEquals(Set.of(10), Set.copyOf(answers.values()));
        // other people are named, and neither the last nor the most frequent name is the answer as a rule
        assertTrue(others > 0.95 * rows.size(), others + " stories with another name");
        assertTrue(notLast > 0.6 * rows.size(), notLast + " stories whose last name is not the answer");
        assertTrue(notMostFrequent > 0.3 * rows.size(), notMostFrequent + " stories where another name is as frequent");
    }

    @Test
    void whoSplitsOnDiskArePromptsAndCompletions() {
        Map<Path, Integer> w = StoryTasks.write("who", dir, 200, 20, 40, 7);
        Set<String> seen = new HashSet<>();
        for (Path p : w.keySet()) {
            Examples ex = Examples.read(p, null);
            assertEquals(Map.of(Example.Kind.COMPLETION, w.get(p)), Map.copyOf(ex.kinds()));
            for (Example e : ex.examples()) {
                assertTrue(seen.add(e.prompt()), "a story in two splits: " + e.prompt());
            }
        }
        assertEquals(260, seen.size());
    }
}
