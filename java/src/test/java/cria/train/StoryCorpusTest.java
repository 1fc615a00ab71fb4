// The story generator: deterministic per seed, different across seeds, only its own words, readable sentences.
package cria.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StoryCorpusTest {
    @TempDir
    Path dir;

    private static List<String> stories(long seed, int n) {
        StoryCorpus g = new StoryCorpus(seed);
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(g.next());
        }
        return out;
    }

    @Test
    void theSameSeedGivesTheSameStoriesAndOtherSeedsOthers() throws IOException {
        assertEquals(stories(5, 50), stories(5, 50));
        assertNotEquals(stories(5, 50), stories(6, 50));
        Path a = dir.resolve("a.txt");
        Path b = dir.resolve("b.txt");
        Path c = dir.resolve("c.txt");
        StoryCorpus.write(a, 100_000, 9);
        StoryCorpus.write(b, 100_000, 9);
        StoryCorpus.write(c, 100_000, 10);
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(c)));
    }

    @Test
    void everyWordComesFromItsOwnLists() {
        Set<String> vocab = StoryCorpus.vocabulary();
        assertTrue(vocab.size() >= 200 && vocab.size() <= 1000, "a few hundred words: " + vocab.size());
        Set<String> unknown = new TreeSet<>();
        Set<String> used = new HashSet<>();
        for (String s : stories(1, 5000)) {
            for (String w : s.replace("'s ", " ").split("[^a-z]+")) {
                if (!w.isEmpty()) {
                    used.add(w);
                    if (!vocab.contains(w)) {
                        unknown.add(w);
                    }
                }
            }
        }
        assertEquals(Set.of(), unknown, "words outside the generator's lists");
        assertTrue(used.size() > 0.9 * vocab.size(), "most of the vocabulary is used: " + used.size() + " of " + vocab.size());
    }

    @Test
    void storiesAreLinesOfShortLowerCaseSentences() {
        Pattern sentence = Pattern.compile("[^.!?]+[.!?]\"?");
        for (String s : stories(2, 2000)) {
            assertEquals(s.toLowerCase(), s);
            assertFalse(s.contains("\n") || s.contains("  ") || s.contains("{") || s.contains("[") || s.contains("|"), s);
            assertTrue(s.matches("[a-z][a-z ,.!?'\"]*[.!\"]"), "starts with a word, ends a sentence: " + s);
            assertFalse(s.matches(".*\\ba [aeiou].*"), "a before a vowel: " + s);
            int sentences = 0;
            Matcher m = sentence.matcher(s);
            while (m.find()) {
                sentences++;
                int words = m.group().trim().split(" +").length;
                assertTrue(words <= 25, "a short sentence: " + m.group());
            }
            assertTrue(sentences >= 5 && sentences <= 20, sentences + " sentences: " + s);
            long quotes = s.chars().filter(c -> c == '"').count();
            assertEquals(0, quotes % 2, "quotes are closed: " + s);
        }
    }

    @Test
    void theHeroKeepsItsNameAndPronouns() {
        Set<String> girls = Set.of(StoryCorpus.GIRLS);
        Set<String> boys = Set.of(StoryCorpus.BOYS);
        int checked = 0;
        for (String s : stories(4, 1000)) {
            String hero = heroOf(s);
            assertTrue(girls.contains(hero) || boys.contains(hero), "the story starts with its hero: " + s);
            assertTrue(s.indexOf(hero, s.indexOf(hero) + hero.length()) > 0, "the hero comes back: " + s);
            // a sentence after the introduction that starts with a pronoun speaks of the hero
            String second = s.split("\\. ", 3)[1];
            if (second.startsWith("he ") || second.startsWith("she ")) {
                assertEquals(girls.contains(hero), second.startsWith("she "), "the hero's pronoun: " + s);
                checked++;
            }
        }
        assertTrue(checked > 100, "pronoun checks: " + checked);
    }

    // The hero: the first word of "lily was a ...", else the name after the first "named".
    private static String heroOf(String s) {
        String first = s.split(" ")[0];
        if (s.startsWith(first + " was a ") && !first.equals("there")) {
            return first;
        }
        int i = s.indexOf("named ");
        return i < 0 ? first : s.substring(i + 6).split("[ .,]")[0];
    }

    @Test
    void theStoriesAreVaried() {
        List<String> all = stories(8, 3000);
        assertTrue(new HashSet<>(all).size() >= 2990, "nearly all stories differ");
        Set<String> openings = new HashSet<>();
        Set<String> sentences = new HashSet<>();
        for (String s : all) {
            openings.add(s.substring(0, Math.min(30, s.length())));
            for (String t : s.split("(?<=[.!?]\"?) ")) {
                sentences.add(t);
            }
        }
        assertTrue(openings.size() > 500, "openings: " + openings.size());
        assertTrue(sentences.size() > 5000, "distinct sentences: " + sentences.size());
    }

    @Test
    void writeStopsAfterTheStoryThatReachesTheSize() throws IOException {
        Path out = dir.resolve("sub/stories.txt");
        long n = StoryCorpus.write(out, 50_000, 3);
        long size = Files.size(out);
        assertTrue(size >= 50_000 && size < 52_000, "size " + size);
        List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
        assertEquals(n, lines.size());
        assertEquals(stories(3, lines.size()), lines);
        try (var files = Files.list(out.getParent())) {
            assertEquals(List.of(out), files.toList(), "no temporary file left behind");
        }
        assertThrows(CriaException.class, () -> StoryCorpus.write(out, 0, 1));
        assertThrows(CriaException.class, () -> StoryCorpus.write(out, StoryCorpus.MAX_BYTES + 1, 1));
    }
}
