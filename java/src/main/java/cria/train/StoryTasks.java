// Tasks made from the story corpus's words: short seeded stories with a label ({"text","label"}) or a question and its answer ({"prompt","completion"}).
package cria.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import cria.CriaException;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Fine-tuning data sets in the story corpus's style and words ({@link StoryCorpus}), so that
 * the default model reads them with its own vocabulary. Two tasks so far, a classification and a
 * prompt/completion:
 *
 * <p><b>mood</b>: how a short story ends, {@code happy}, {@code sad} or {@code scared}. A story
 * has a beginning (a character, maybe a hobby, a thing or a friend and a place), maybe a sentence
 * with a mood word chosen regardless of the label ("that morning, tom was a little scared."), then the
 * ending that decides the label: an event, a reaction or both, each told in one of several ways
 * ("the kite flew away over the trees and was gone."; "{name} sat alone in {his} room."), and
 * maybe a closing sentence that says nothing about the mood. No single word gives the label away:
 * the mood words also occur in the other classes' beginnings, and each class has many endings.
 *
 * <p><b>who</b>: who a short story is about. The prompt is a story followed by {@link #WHO_QUESTION}
 * ("\nwho was the story about?\n"), the completion the main character's name on a line of its own
 * ({@code " lily.\n"}): a copy from the context, checked by greedy exact match (the line break
 * ends the answer for models that never learned EOS: {@code cria eval --stop}). The main character is
 * the one the story opens with ("there was a shy girl named lily."); one or two other people
 * ("{pal}", "{pal2}") come into the middle and often have the last word ("then tom and mia went
 * home."), so that neither the last name nor the most recent one is the answer. The answers take
 * turns over all {@link #whoNames() names} (balanced), then are shuffled.
 *
 * <p>Splits are balanced (the labels take turns, then are shuffled), deterministic for a seed,
 * and disjoint: each split has its own generator, and a story already in an earlier split (or
 * earlier in the same one) is drawn again, as is one longer than {@link #MAX_WORDS} words (the
 * story alone, without the question).
 */
public final class StoryTasks extends StoryTemplates {
    /** One labelled story. */
    public record Labelled(String text, String label) {}

    /** One story with its question (the prompt) and the answer (the completion). */
    public record Completion(String prompt, String completion) {}

    /** What a {@code who} prompt ends with, after the story. */
    public static final String WHO_QUESTION = "\nwho was the story about?\n";

    /**
     * The most words of a story: with the cue and a label, under the 128 tokens of the default
     * model's context (its 512-token vocabulary spends about two tokens a word).
     */
    public static final int MAX_WORDS = 48;

    /** The most examples one split may ask for. */
    public static final int MAX_EXAMPLES = 1_000_000;

    private static final Map<String, List<String>> TASKS = Map.of("mood", List.of("happy", "sad", "scared"));
    private static final Set<String> COMPLETION_TASKS = Set.of("who");
    private static final ObjectMapper JSON = new ObjectMapper();

    private StoryTasks(long seed) {
        super(seed);
    }

    /** The task names. */
    public static List<String> names() {
        Set<String> all = new java.util.TreeSet<>(TASKS.keySet());
        all.addAll(COMPLETION_TASKS);
        return List.copyOf(all);
    }

    /**
     * Whether a task writes {@code {"prompt","completion"}} lines (else {@code {"text","label"}}).
     *
     * @throws CriaException for an unknown task
     */
    public static boolean completes(String task) {
        if (COMPLETION_TASKS.contains(task)) {
            return true;
        }
        if (!TASKS.containsKey(task)) {
            throw new CriaException("unknown task '" + task + "'; the tasks are: " + String.join(", ", names()));
        }
        return false;
    }

    /**
     * The labels of a classification task, in report order.
     *
     * @throws CriaException for an unknown task, or one that writes prompts and completions
     */
    public static List<String> labels(String task) {
        if (completes(task)) {
            throw new CriaException("task '" + task + "' writes prompts and completions, not labels");
        }
        return TASKS.get(task);
    }

    /** The main characters' names of the {@code who} task, in the order the answers take turns. */
    public static List<String> whoNames() {
        return WHO_NAMES;
    }

    /**
     * {@code count} labelled stories, balanced, none of them in {@code exclude} nor twice; the
     * texts made are added to {@code exclude}.
     */
    public static List<Labelled> generate(String task, int count, long seed, Set<String> exclude) {
        List<String> labels = labels(task);
        if (count < 0 || count > MAX_EXAMPLES) {
            throw new CriaException(count + " examples: between 0 and " + MAX_EXAMPLES);
        }
        int[] order = Windows.permutation(count, Windows.mix(seed ^ 0x6A09E667F3BCC909L));
        StoryTasks gen = new StoryTasks(seed);
        List<Labelled> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int label = order[i] % labels.size();
            String text;
            int tries = 0;
            do {
                if (++tries > 10_000) {
                    throw new IllegalStateException("the " + task + " task ran out of new stories");
                }
                text = gen.mood(label);
            } while (words(text) > MAX_WORDS || !exclude.add(text));
            out.add(new Labelled(text, labels.get(label)));
        }
        return out;
    }

    /**
     * {@code count} stories with a question and its answer, the answers balanced over
     * {@link #whoNames()}, none of the prompts in {@code exclude} nor twice; the prompts made are
     * added to {@code exclude}.
     *
     * @throws CriaException for an unknown task, one with labels, or a count outside 0..{@link #MAX_EXAMPLES}
     */
    public static List<Completion> completions(String task, int count, long seed, Set<String> exclude) {
        if (!completes(task)) {
            throw new CriaException("task '" + task + "' writes labels, not prompts and completions");
        }
        if (count < 0 || count > MAX_EXAMPLES) {
            throw new CriaException(count + " examples: between 0 and " + MAX_EXAMPLES);
        }
        int[] order = Windows.permutation(count, Windows.mix(seed ^ 0x6A09E667F3BCC909L));
        StoryTasks gen = new StoryTasks(seed);
        List<Completion> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int hero = order[i] % WHO_NAMES.size();
            String text;
            int tries = 0;
            do {
                if (++tries > 10_000) {
                    throw new IllegalStateException("the " + task + " task ran out of new stories");
                }
                text = gen.who(hero);
            } while (words(text) > MAX_WORDS || !exclude.add(text + WHO_QUESTION));
            out.add(new Completion(text + WHO_QUESTION, " " + WHO_NAMES.get(hero) + ".\n"));
        }
        return out;
    }

    /**
     * Writes {@code dir/train.jsonl}, {@code dir/val.jsonl} and {@code dir/test.jsonl} of
     * {@code {"text","label"}} lines (or {@code {"prompt","completion"}} lines for a task that
     * {@link #completes completes}), each split from its own seed (derived from {@code seed}) and
     * disjoint from the others. Returns the file names with their example counts.
     *
     * @throws CriaException for an unknown task, a count outside 1..{@link #MAX_EXAMPLES}, or a directory that cannot be written
     */
    public static Map<Path, Integer> write(String task, Path dir, int train, int val, int test, long seed) {
        boolean completes = completes(task);
        Map<String, Integer> splits = new LinkedHashMap<>();
        splits.put("train", train);
        splits.put("val", val);
        splits.put("test", test);
        for (Map.Entry<String, Integer> s : splits.entrySet()) {
            if (s.getValue() < 1 || s.getValue() > MAX_EXAMPLES) {
                throw new CriaException("--" + s.getKey() + " " + s.getValue() + ": between 1 and " + MAX_EXAMPLES + " examples");
            }
        }
        Set<String> seen = new HashSet<>();
        Map<Path, Integer> written = new LinkedHashMap<>();
        long split = 0;
        for (Map.Entry<String, Integer> s : splits.entrySet()) {
            long splitSeed = Windows.mix(seed + Windows.EPOCH_STRIDE * ++split);
            List<String> rows = new ArrayList<>(s.getValue());
            if (completes) {
                for (Completion c : completions(task, s.getValue(), splitSeed, seen)) {
                    rows.add(json("prompt", c.prompt, "completion", c.completion));
                }
            } else {
                for (Labelled l : generate(task, s.getValue(), splitSeed, seen)) {
                    rows.add(json("text", l.text, "label", l.label));
                }
            }
            Path file = dir.resolve(s.getKey() + ".jsonl");
            writeJsonl(file, rows);
            written.put(file, rows.size());
        }
        return written;
    }

    private static int words(String text) {
        int n = 0;
        for (int i = 0; i < text.length(); i++) {
            if (text.charAt(i) == ' ') {
                n++;
            }
        }
        return n + 1;
    }

    private static String json(String k1, String v1, String k2, String v2) {
        try {
            return JSON.writeValueAsString(JSON.createObjectNode().put(k1, v1).put(k2, v2));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void writeJsonl(Path out, List<String> rows) {
        Path tmp = null;
        try {
            Files.createDirectories(out.toAbsolutePath().getParent());
            tmp = out.resolveSibling("." + out.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
            try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                for (String r : rows) {
                    w.write(r);
                    w.write('\n');
                }
            }
            try {
                Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new CriaException(out + ": cannot write (" + e.getMessage() + "); check the path and free space", e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // a temporary file left behind; nothing else to do
                }
            }
        }
    }

    // ---- the mood task ----

    /** Beginnings: any label. */
    private static final String[] INTROS = {
        "once upon a time, there was a {adj} {kind} named {name}.",
        "there was a {adj} {kind} named {name}.",
        "{name} was a {adj} {kind} who lived [in a small house|near a big forest|with {his} {parent}|in a quiet town].",
        "once upon a time, in a [small|quiet] town, there lived a {adj} {kind} named {name}."};
    private static final String[] SETUPS = {
        "one [day|morning|afternoon], {name} went to the {place} with {his} {color} {thing}.",
        "{name} had a {color} {thing} that {he} loved very much.",
        "one [day|morning], {name} and {his} friend {pal} went to the {place} to play.",
        "[one day|after lunch], {name} and {his} {parent} went walking in the {place}.",
        "one night, {name} was in bed with {his} {color} {thing}."};
    /** Mood words that say nothing about the ending: drawn whatever the label. */
    private static final String[] DISTRACTORS = {
        "that morning, {name} was a little scared.", "{name} was happy to go outside.", "{pal} was sad that day.",
        "{he} felt happy and ran to the {spot}.", "{pal} said, \"do not be scared.\"", "{name} was sad that {pal} was not there.",
        "{he} was not afraid of anything.", "{name} smiled at {his} {parent}.", "{he} was a little sad, but not for long.",
        "{name} laughed at a funny bird."};
    private static final String[][] EVENTS = {
        { // happy
            "soon {pal} found the {thing} [under a big leaf|in the tall grass|behind the {spot}] and gave it back.",
            "then the sun came out, and they saw a big rainbow in the sky.",
            "{his} {parent} came home with a big cake for {him}.",
            "{pal} came by and said, \"let us play together!\"",
            "the little {critter} felt better and {moved} away.",
            "{his} {parent} helped {him} fix the {toy}, and soon it was as good as new.",
            "the seed {he} planted grew into a big {flower} flower.",
            "{he} found a new friend named {pal} at the {place}."},
        { // sad
            "but the {thing} was gone, and no one could find it.",
            "then it began to rain, and the rain did not stop.",
            "{his} {color} kite flew away over the tall trees.",
            "{pal} had to go far away to a new town.",
            "the {toy} fell on the floor and broke, and no one could fix it.",
            "the little {critter} ran away and was gone.",
            "a big wave came and washed {his} {thing} away.",
            "{his} friends went home, and {he} was all alone."},
        { // scared
            "then {he} heard a loud noise at the window.",
            "a big black dog ran at {him} very fast.",
            "the light went out, and the room was very dark.",
            "{he} saw a strange light moving in the dark forest.",
            "the wind was very loud, and the window was moving.",
            "{he} got lost in the forest, far from home.",
            "someone knocked on the window in the dark night.",
            "someone was moving [near the bed|under the window|behind the tree]."}};
    private static final String[][] REACTIONS = {
        {"{name} smiled.", "{name} laughed and played until the sun went down.", "{he} gave {pal} a big hug.", "it was the best day.",
            "{name} was so happy.", "{name} felt warm inside.", "{name} jumped up and down and shouted, \"yes!\"",
            "{he} said, \"thank you!\" with a big smile."},
        {"{name} started to cry.", "{he} sat alone in {his} room.", "{name} was very sad.", "{he} did not play with anything anymore.",
            "it was not a good day.", "{name} felt sad for a long time.", "{he} looked at the sky and did not smile.",
            "{name} walked home all alone."},
        {"{name} hid under the blanket.", "{he} ran home as fast as {he} could.", "{name} was very scared.",
            "{he} called for {his} {parent} again and again.", "{name} was too afraid to sleep.",
            "{he} kept close to {his} {parent} all night.", "{name} shouted, \"help!\" and hid behind the {spot}.",
            "{name} did not look, and {he} did not sleep."}};
    private static final String[] CLOSINGS = {"then they went home.", "the day was over.", "after that, it was time for bed.",
        "soon it was night."};

    // One story whose ending is of class 'label'.
    private String mood(int label) {
        story.setLength(0);
        slots.clear();
        cast();
        say(pick(INTROS));
        if (below(3) == 0) {
            say("{he} liked to " + pick(StoryCorpus.HOBBIES) + ".");
        }
        say(pick(SETUPS));
        if (below(5) < 3) {
            say(pick(DISTRACTORS));
        }
        int how = below(4); // 0: the event only, 1: the reaction only, 2-3: both
        if (how != 1) {
            say(pick(EVENTS[label]));
        }
        if (how != 0) {
            say(pick(REACTIONS[label]));
        }
        if (below(10) < 3) {
            say(pick(CLOSINGS));
        }
        return StoryCorpus.articles(story.toString());
    }

    private void cast() {
        boolean girl = below(2) == 0;
        cast(pick(girl ? StoryCorpus.GIRLS : StoryCorpus.BOYS), girl);
    }

    // The main character 'name' and the rest of the cast around it.
    private void cast(String name, boolean girl) {
        put("name", name);
        put("kind", below(2) == 0 ? (girl ? "girl" : "boy") : pick(StoryCorpus.ANIMALS));
        put("he", girl ? "she" : "he");
        put("his", girl ? "her" : "his");
        put("him", girl ? "her" : "him");
        put("adj", pick(StoryCorpus.ADJECTIVES));
        String pal;
        do {
            pal = pick(below(2) == 0 ? StoryCorpus.GIRLS : StoryCorpus.BOYS);
        } while (pal.equals(name));
        put("pal", pal);
        put("parent", pick(StoryCorpus.PARENTS));
        String[] place = StoryCorpus.PLACES[below(StoryCorpus.PLACES.length)];
        put("place", place[0]);
        put("spot", place[1 + below(place.length - 1)]);
        put("color", pick(StoryCorpus.COLORS));
        put("thing", pick(StoryCorpus.THINGS));
        put("toy", "toy " + pick(StoryCorpus.TOYS));
        String[] critter = StoryCorpus.CRITTERS[below(StoryCorpus.CRITTERS.length)];
        put("critter", critter[0]);
        put("moved", critter[1]);
        put("flower", pick(StoryCorpus.FLOWERS));
    }

    // ---- the who task ----

    private static final List<String> WHO_NAMES;

    static {
        List<String> n = new ArrayList<>(List.of(StoryCorpus.GIRLS));
        n.addAll(List.of(StoryCorpus.BOYS));
        WHO_NAMES = List.copyOf(n);
    }

    /** Others come in: a friend or two, or a parent. */
    private static final String[] WHO_SETUPS = {
        "{name} had a friend named {pal}.",
        "one [day|morning], {name} and {his} friend {pal} went to the {place} to play.",
        "one day, {name} went to the {place} with {pal} and {pal2}.",
        "{name} liked to play with {pal} and {pal2}.",
        "[one day|after lunch], {name} and {his} {parent} went walking in the {place}.",
        "one [day|morning], {name} went to the {place} with {his} {color} {thing}."};
    /** The middle: one or two of these, often about the others. */
    private static final String[] WHO_MIDDLES = {
        "{pal} had a new {toy}.", "{pal} said, \"let us play together!\"", "{name} saw {pal2} near the {spot}.",
        "{pal2} came by and said, \"hi, {name}!\"", "they played with the {thing} until lunch.",
        "{he} found a little {critter} behind the {spot}.", "{pal} and {pal2} wanted to play a game.",
        "{name} gave {pal} a {food}.", "{name} helped {pal} look for a lost {thing}.", "{pal} ran to the {spot} and back.",
        "{pal2} was sad, so {name} gave {pal2} a hug."};
    /** Endings, most with another person's name last. */
    private static final String[] WHO_ENDINGS = {
        "{pal} smiled and went home.", "then {pal} and {pal2} went home.", "{name} and {pal} were good friends.",
        "{pal} said, \"thank you, {name}!\"", "it was a fun day for {pal} too.", "{pal2} looked at {pal} and smiled."};

    // One story about WHO_NAMES[hero], without the question.
    private String who(int hero) {
        story.setLength(0);
        slots.clear();
        cast(WHO_NAMES.get(hero), hero < StoryCorpus.GIRLS.length);
        String pal2;
        do {
            pal2 = pick(below(2) == 0 ? StoryCorpus.GIRLS : StoryCorpus.BOYS);
        } while (pal2.equals(slots.get("name")) || pal2.equals(slots.get("pal")));
        put("pal2", pal2);
        put("food", pick(StoryCorpus.FOODS));
        say(pick(INTROS));
        if (below(3) == 0) {
            say("{he} liked to " + pick(StoryCorpus.HOBBIES) + ".");
        }
        say(pick(WHO_SETUPS));
        int first = below(WHO_MIDDLES.length);
        say(WHO_MIDDLES[first]);
        if (below(2) == 0) {
            say(WHO_MIDDLES[(first + 1 + below(WHO_MIDDLES.length - 1)) % WHO_MIDDLES.length]);
        }
        if (below(3) == 0) {
            String[] events = EVENTS[below(EVENTS.length)];
            say(pick(events));
        }
        if (below(4) < 3) {
            say(pick(WHO_ENDINGS));
        } else if (below(2) == 0) {
            say(pick(CLOSINGS));
        }
        return StoryCorpus.articles(story.toString());
    }
}
