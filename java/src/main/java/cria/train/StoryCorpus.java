// A seeded generator of short, simple English stories (one per line, lower case): the corpus Cria's default model trains on.
package cria.train;

import cria.CriaException;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Writes simple stories for small children in the manner of TinyStories: a character with a name,
 * a beginning, a problem and an end, in short past-tense sentences, lower case, one story per
 * line. Twelve plots (a lost toy, a kite in a tree, rain on a picnic, a new friend, sharing food,
 * a noise at night, a broken toy, a hurt or lost animal, a race, a birthday cake, a seed that
 * grows, a sand castle) are told from sentence templates with alternatives, filled with words
 * from the lists below; each story keeps its characters, their pronouns and its objects.
 *
 * <p>The vocabulary is small on purpose ({@link #vocabulary()}: a few hundred words) and the
 * grammar regular, so that a model of a few hundred thousand parameters learns to write such
 * stories within minutes, while the combinations keep it from memorizing them. The output
 * depends only on the seed (the random numbers are SplitMix64's, not the JDK's).
 */
public final class StoryCorpus extends StoryTemplates {
    /** The most {@link #write} will produce. */
    public static final long MAX_BYTES = 1L << 30;

    // ---- the word lists (written for this corpus) ----
    static final String[] GIRLS = {"lily", "mia", "sue", "anna", "emma", "lucy", "amy", "sara", "kim", "zoe", "ella", "rose",
        "jane", "molly", "daisy", "ruby", "lila", "nina", "ivy", "mary"};
    static final String[] BOYS = {"tom", "ben", "max", "sam", "tim", "jack", "leo", "jim", "bob", "joe", "dan", "finn",
        "luke", "noah", "pip", "ted", "billy", "jake", "toby", "roy"};
    static final String[] ANIMALS = {"dog", "cat", "bunny", "bear", "duck", "frog", "mouse", "fox", "pig", "bird", "puppy",
        "kitten", "lion", "owl", "sheep", "cow"};
    static final String[] ADJECTIVES = {"little", "small", "happy", "kind", "brave", "shy", "funny", "curious", "friendly",
        "good", "sweet", "smart", "busy", "cheerful", "gentle"};
    static final String[] COLORS = {"red", "blue", "green", "yellow", "pink", "purple", "orange", "white", "big", "shiny", "new"};
    static final String[] THINGS = {"ball", "kite", "doll", "hat", "book", "toy car", "teddy bear", "drum", "balloon", "box",
        "boat", "crayon", "ring", "shoe", "bag"};
    static final String[] TOYS = {"car", "boat", "train", "robot", "doll", "drum", "plane", "truck"};
    static final String[] FOODS = {"apple", "cookie", "cake", "sandwich", "banana", "pie", "muffin", "carrot", "orange", "pear"};
    /** Places, each with spots to look under or behind. */
    static final String[][] PLACES = {
        {"park", "bench", "slide", "tree"}, {"garden", "bush", "fence", "tree"}, {"forest", "log", "rock", "tree"},
        {"yard", "fence", "box", "tree"}, {"field", "rock", "log", "fence"}, {"playground", "slide", "swing", "bench"},
        {"farm", "barn", "fence", "cart"}, {"meadow", "rock", "log", "bush"}};
    /** Small animals to help, each with how it moves when it is well again. */
    static final String[][] CRITTERS = {{"bird", "flew"}, {"frog", "hopped"}, {"duck", "waddled"}, {"bunny", "hopped"},
        {"kitten", "ran"}, {"puppy", "ran"}, {"mouse", "ran"}, {"squirrel", "ran"}, {"turtle", "walked"}};
    static final String[] HOBBIES = {"play in the sun", "run and jump", "sing songs", "draw pictures", "read books",
        "play with {his} friends", "dance", "look at the stars", "play games", "dig in the dirt", "climb trees",
        "pick flowers", "help {his} {parent}", "play outside"};
    static final String[] PARENTS = {"mom", "dad"};
    static final String[] FLOWERS = {"red", "yellow", "pink", "blue", "white", "purple"};
    /** The words the templates themselves use (the rest come from the lists above). */
    static final String GLUE = """
        a about afraid after afternoon again all alone an and any anymore anything are around as ask asked at ate \
        away back be beach because bed began behind best better big bigger birthday black blanket blankets boy bread \
        broke brought but by cake called came can card careful carefully castle climbed close clouds colors could cry \
        dark day did do down drew eggs even every everyone everything everywhere far fast feel fell felt find fix \
        flew floor flour flower flowers fly food for forest forgot found friend friends from fun game gave get girl \
        glue go gone good got grandma grass green grew ground had half hands happened happily happy hard have he \
        heard help helped her here hi hid high him his holding home hot house hug hugged hungry hurt i idea important \
        in inside instead into is it its jumped just keep kept kitchen knee knew knocked last laughed leaf learned \
        leg let light liked little lived long look looked lost lot loud loved lunch made make makes many milk mixed \
        moment more morning mother moving much mud must my named near new next nice night no noise not nothing now of \
        off okay on once one only others our out outside oven over path picnic picture pictures plant planted played \
        playing proud pulled pushed put quiet race rain rainbow rainy ran reach ready roof room running sad said sand \
        sat saw say scared sea see seed shared sharing she shouted sky sleep small smile smiled so soft some someone \
        soon stairs started stick stop stopped strange stuck sun sunny take tall tent than thank that the then there \
        they things this thought time to together too took top town tried turned two under until up upon us used very \
        wait waited walked walking wanted warm was washed water wave we went were when while who why will win wind \
        window windy winning with work worked worry yes you your""";

    /**
     * A generator whose stories depend only on the seed.
     *
     * @param seed any value; equal seeds give equal stories
     */
    public StoryCorpus(long seed) {
        super(seed);
    }

    /**
     * Writes stories to {@code out}, one per line, until at least {@code bytes} bytes are written
     * (the last story is whole), replacing the file atomically.
     *
     * @param out   the file to write (its directory is created if needed)
     * @param bytes how much text to write at least, 1..{@link #MAX_BYTES}
     * @param seed  the generator's seed
     * @return the number of stories written
     * @throws CriaException when {@code bytes} is not in 1..{@link #MAX_BYTES} or the file cannot be written
     */
    public static long write(Path out, long bytes, long seed) {
        if (bytes < 1 || bytes > MAX_BYTES) {
            throw new CriaException("story corpus size " + bytes + " bytes is outside 1.." + MAX_BYTES + "; ask for e.g. 3000000");
        }
        StoryCorpus gen = new StoryCorpus(seed);
        Path dir = out.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = dir.resolve("." + out.getFileName() + "." + ProcessHandle.current().pid() + "." + System.nanoTime() + ".tmp");
            long written = 0;
            long stories = 0;
            try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                while (written < bytes) {
                    String s = gen.next();
                    w.write(s);
                    w.write('\n');
                    written += s.length() + 1; // ASCII: one byte per char
                    stories++;
                }
            }
            try {
                Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING);
            }
            return stories;
        } catch (IOException e) {
            throw new CriaException(out + ": cannot write the story corpus (" + e.getMessage() + "); check the path and free space", e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // the temporary file is left behind; nothing else to do
                }
            }
        }
    }

    /** Every word the stories can contain (lower case; the possessive {@code 's} counts as punctuation). */
    public static Set<String> vocabulary() {
        Set<String> words = new TreeSet<>();
        for (String[] list : new String[][] {GIRLS, BOYS, ANIMALS, ADJECTIVES, COLORS, THINGS, TOYS, FOODS, HOBBIES, PARENTS, FLOWERS,
            GLUE.split("\\s+")}) {
            for (String s : list) {
                addWords(words, s);
            }
        }
        for (String[][] table : new String[][][] {PLACES, CRITTERS}) {
            for (String[] row : table) {
                for (String s : row) {
                    addWords(words, s);
                }
            }
        }
        return words;
    }

    private static void addWords(Set<String> words, String s) {
        for (String w : s.replaceAll("\\{[a-z0-9]+\\}", " ").split("[^a-z]+")) {
            if (!w.isEmpty()) {
                words.add(w);
            }
        }
    }

    /** The next story: one line of lower-case text, without a newline. */
    public String next() {
        story.setLength(0);
        slots.clear();
        cast();
        switch (below(12)) {
            case 0 -> lostThing();
            case 1 -> kite();
            case 2 -> rainyPicnic();
            case 3 -> newFriend();
            case 4 -> sharing();
            case 5 -> noiseAtNight();
            case 6 -> brokenToy();
            case 7 -> helpAnimal();
            case 8 -> race();
            case 9 -> birthdayCake();
            case 10 -> seed();
            default -> sandCastle();
        }
        return articles(story.toString().trim());
    }

    // ---- characters ----

    // The hero, a friend and a parent, with their pronouns; a place and a thing.
    private void cast() {
        boolean girl = below(2) == 0;
        String name = pick(girl ? GIRLS : BOYS);
        boolean person = below(2) == 0;
        put("name", name);
        put("kind", person ? (girl ? "girl" : "boy") : pick(ANIMALS));
        pronouns("", girl);
        put("adj", pick(ADJECTIVES));
        boolean palGirl = below(2) == 0;
        String pal;
        do {
            pal = pick(palGirl ? GIRLS : BOYS);
        } while (pal.equals(name));
        put("pal", pal);
        put("pkind", below(2) == 0 ? (palGirl ? "girl" : "boy") : pick(ANIMALS));
        pronouns("p", palGirl);
        boolean mom = below(2) == 0;
        put("parent", mom ? "mom" : "dad");
        pronouns("r", mom);
        String[] place = PLACES[below(PLACES.length)];
        put("place", place[0]);
        int a = 1 + below(3);
        int b = 1 + (a - 1 + 1 + below(2)) % 3;
        put("spot", place[a]);
        put("spot2", place[b]);
        put("color", pick(COLORS));
        put("thing", pick(THINGS));
        put("food", pick(FOODS));
        String food2;
        do {
            food2 = pick(FOODS);
        } while (food2.equals(slots.get("food")));
        put("food2", food2);
    }

    private void pronouns(String prefix, boolean she) {
        put(prefix + "he", she ? "she" : "he");
        put(prefix + "his", she ? "her" : "his");
        put(prefix + "him", she ? "her" : "him");
    }

    // ---- plots: a beginning, a problem, an end ----

    private void intro() {
        say(pick(
                "once upon a time, there was a {adj} {kind} named {name}.",
                "there was a {adj} {kind} named {name}.",
                "once upon a time, in a [small|quiet] town, there lived a {adj} {kind} named {name}.",
                "{name} was a {adj} {kind} who lived [in a small house|near a big forest|with {his} {parent}|by the sea]."));
        if (below(2) == 0) {
            say("{he} liked to " + pick(HOBBIES) + ".");
        }
    }

    private void lostThing() {
        intro();
        say(pick("{name} had a {color} {thing}. {he} loved it very much.",
                "{his} {parent} gave {him} a {color} {thing} [for {his} birthday|one morning]. {name} loved it more than anything.",
                "{name} had a {color} {thing} that {he} took everywhere."));
        say("one [day|morning|afternoon], {name} went to the {place} [with {his} {thing}|to play].");
        say("{he} played with the {thing} near the {spot} [all morning|for a long time|with a big smile].");
        say(pick("[then|after a while|but soon], {name} could not find the {thing}.",
                "when it was time to go home, the {thing} was gone."));
        say("{he} looked [under|behind|near] the {spot2}, but it was not there.");
        say("{name} felt [sad|very sad] and [started to cry|sat down on the ground].");
        say("just then, [{his} friend {pal}|a {pkind} named {pal}] came by and asked, \"why are you sad?\"");
        say("\"i lost my {thing},\" said {name}.");
        say("\"do not worry. i will help you find it,\" said {pal}.");
        say("they looked [everywhere|all over the {place}] together.");
        say("soon {pal} found the {thing} [under a big leaf|in the tall grass|behind the {spot2}|in the mud].");
        say("{name} was so happy. {he} said, \"thank you, {pal}!\"");
        say(pick("they played with the {thing} until the sun went down.",
                "from that day on, {name} and {pal} were best friends.",
                "after that, {name} was careful to keep {his} {thing} close."));
    }

    private void kite() {
        intro();
        put("thing", "kite");
        say("one [windy|sunny] day, {name} and {his} friend {pal} went to the {place} to fly a {color} kite.");
        say("the kite went up high in the sky. {name} laughed and ran [fast|with the kite].");
        say("then a big wind came, and the kite got stuck in a tall tree.");
        say("{name} [tried to reach it|jumped up high], but the kite was too high.");
        say("{he} felt sad. \"my kite is stuck,\" {he} said.");
        if (below(2) == 0) {
            say("{pal} had an idea. \"let us ask your {parent} for help,\" {phe} said.");
            say("{name}'s {parent} came with a long stick. {rhe} [pulled|pushed] the kite [down|off the tree] very carefully.");
        } else {
            say("{pal} looked at the tree and said, \"i can climb it!\"");
            say("{phe} climbed up the tree, took the kite and came back down.");
        }
        say("{name} was so happy. \"thank you!\" {he} said.");
        say(pick("they flew the kite again, but this time far from the trees.",
                "the two friends played with the kite until it was time to go home."));
    }

    private void rainyPicnic() {
        intro();
        say("one [sunny|nice] day, {name} and {his} {parent} went to the {place} for a picnic.");
        say("they brought [some bread, a {food} and a {food2}|a {food} and some milk|a {food} and a {food2}].");
        say("but soon, dark clouds came and it began to rain.");
        say("{name} was sad. {he} wanted to play [in the sun|outside].");
        say("{his} {parent} said, \"do not be sad. we can [play inside|have our picnic at home].\"");
        say("they went home and [drew pictures|played a game|made a big tent with blankets] [in the kitchen|in {his} room].");
        say("they ate the {food} [on the floor|in the tent|together] and laughed a lot.");
        if (below(2) == 0) {
            say("then the sun came out again, and they saw a big rainbow in the sky.");
        }
        say(pick("{name} smiled. it was a good day after all.", "{name} learned that a rainy day can be fun too."));
    }

    private void newFriend() {
        say(pick("there was a {adj} {kind} named {name}.", "once upon a time, there was a shy {kind} named {name}."));
        say(pick("{name} was new in town and did not have any friends.", "{name} was very shy and did not have many friends."));
        say("one day, {he} saw a {pkind} named {pal} playing with a {color} {thing} in the {place}.");
        say("{name} wanted to play too, but {he} was [scared|shy].");
        say("[at last|after a while], {he} walked up to {pal} and said, \"hi, can i play with you?\"");
        say("{pal} smiled and said, \"yes! let us play together.\"");
        say("they [ran and jumped|played with the {thing}|laughed and played] all [day|afternoon] in the {place}.");
        say(pick("{name} was not shy anymore. {he} had a new friend.",
                "from that day on, {name} and {pal} played together every day.",
                "{name} learned that it is good to say hi to someone new."));
    }

    private void sharing() {
        intro();
        say("one day, {name} had a big {food} for lunch.");
        say("[{his} friend {pal}|a {pkind} named {pal}] [did not have any food|forgot {phis} lunch at home] and was very hungry.");
        say("{name} [saw|knew] that {pal} was hungry.");
        say(pick("{he} thought for a moment. then {he} gave half of the {food} to {pal}.",
                "{he} said, \"here, you can have some of my {food}.\""));
        say("{pal} was very happy. \"thank you, {name}!\" {phe} said.");
        say("[the two friends ate together and laughed|they sat under a tree and ate together].");
        if (below(2) == 0) {
            say("the next day, {pal} brought a {food2} and shared it with {name}.");
        }
        say(pick("{name} learned that sharing makes everyone happy.", "sharing made {name} feel warm inside."));
    }

    private void noiseAtNight() {
        intro();
        String[] cause = pick2(new String[][] {{"a loud noise at the window", "the wind"},
            {"a strange noise under the bed", "a little cat"}, {"a noise outside", "a big tree moving in the wind"},
            {"a loud noise on the roof", "the rain"}});
        put("noise", cause[0]);
        put("cause", cause[1]);
        say("one night, {name} was in bed.");
        say("{he} heard {noise}.");
        say("{name} was [scared|very scared|afraid]. {he} [hid under the blanket|called for {his} {parent}].");
        say("{his} {parent} came in and turned on the light.");
        say("they looked [around the room|out the window] and saw that it was only {cause}.");
        say("{name} laughed. {he} was not scared anymore.");
        say("{his} {parent} gave {him} a big hug, and {name} went to sleep.");
    }

    private void brokenToy() {
        intro();
        put("toy", pick(TOYS));
        say("{name} had a {color} toy {toy}. it was {his} best toy.");
        say("one day, {he} was playing with it [on the stairs|very fast], and it fell and broke.");
        say("{name} was very sad[. {he} started to cry| and began to cry].");
        say("{his} {parent} saw {him} and said, \"do not cry. we can fix it.\"");
        say("they [used some glue|worked together] to fix the {toy}.");
        say("soon the {toy} was as good as new.");
        say("{name} hugged {his} {parent} and said, \"thank you!\"");
        say("from then on, {he} played with {his} {toy} more carefully.");
    }

    private void helpAnimal() {
        intro();
        String[] critter = CRITTERS[below(CRITTERS.length)];
        put("animal", critter[0]);
        put("moved", critter[1]);
        say("one day, {name} was walking in the {place} [with {his} {parent}|with {his} friend {pal}|all alone].");
        say("{he} saw a little {animal} [under a tree|by the path|near the {spot}].");
        if (below(2) == 0) {
            say("the {animal} was sad because it had a hurt leg.");
            say("{name} [put a small leaf on its leg|gave it some water] and kept it warm.");
            say("after a while, the {animal} felt better.");
            say("it {moved} away happily.");
        } else {
            say("the {animal} was sad because it could not find its mother.");
            say("{name} helped it look all over the {place}.");
            say("at last, they found the mother {animal} [behind the {spot2}|near the {spot2}].");
            say("the little {animal} was so happy to see its mother.");
        }
        say(pick("{name} smiled. {he} was happy that {he} could help.", "{name} felt proud. it is good to help others."));
    }

    private void race() {
        intro();
        say("{name} and {his} friend {pal} liked to run.");
        put("goal", pick("big tree", slots.get("spot")));
        say("[one day|one morning|after lunch], they had a race to the {goal} in the {place}.");
        say("{name} ran very fast, but then {he} fell down and hurt {his} knee.");
        say("{pal} stopped running and came back to help.");
        say("{phe} helped {name} get up and asked, \"are you okay?\"");
        say("{name} said, \"you could win the race. why did you stop?\"");
        say("{pal} said, \"friends are more important than winning.\"");
        say("they walked to the {goal} together, holding hands.");
    }

    private void birthdayCake() {
        intro();
        say("it was {name}'s {parent}'s birthday. {name} wanted to make {rhim} a cake.");
        say("{he} and {his} grandma mixed the flour, the eggs and the milk.");
        say("they put the cake in the oven and waited.");
        if (below(2) == 0) {
            say("but they forgot about the cake, and it got too hot. the cake was black!");
            say("{name} was sad. \"now there is no cake,\" {he} said.");
            say("then {he} had an idea. {he} drew a big picture of a cake [and a card|with many colors] instead.");
            say("{his} {parent} loved the picture and gave {name} a big hug.");
        } else {
            say("soon the cake was ready. it was big and [sweet|soft|warm].");
            say("{name} put a [red|pink|yellow] flower on top of the cake.");
            say("when {his} {parent} came home, {name} shouted, \"happy birthday!\"");
            say("{his} {parent} smiled and gave {name} a big hug. they ate the cake together.");
        }
    }

    private void seed() {
        intro();
        put("flower", pick(FLOWERS));
        say("one day, {name} found a small seed [in the garden|on the ground].");
        say("{he} planted it and gave it water every day.");
        say("but nothing happened. {name} was sad.");
        say("{his} {parent} said, \"you must wait. good things take time.\"");
        say("{name} waited and waited.");
        say("one morning, {he} saw a little green plant.");
        say("soon it grew into a big {flower} flower.");
        say(pick("{name} was very proud of {his} flower.", "{name} learned that good things take time."));
    }

    private void sandCastle() {
        intro();
        say("one [sunny|warm] day, {name} went to the beach with {his} {parent}.");
        say("{he} made a big sand castle near the water.");
        say("then a big wave came and [knocked it down|washed it away].");
        say("{name} was sad. all {his} hard work was gone.");
        say("a {pkind} named {pal} [saw {him}|came by] and said, \"i can help you make a new one.\"");
        say("together, they made an even bigger castle, far from the water.");
        say(pick("{name} learned that friends make everything better.", "{name} and {pal} played at the beach until the sun went down."));
    }

    // ---- templates (StoryTemplates) ----

    // "a" before a vowel becomes "an".
    static String articles(String s) {
        StringBuilder out = new StringBuilder(s.length() + 8);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            out.append(c);
            if (c == 'a' && (i == 0 || !Character.isLetter(s.charAt(i - 1))) && i + 2 < s.length() && s.charAt(i + 1) == ' '
                    && "aeiou".indexOf(s.charAt(i + 2)) >= 0) {
                out.append('n');
            }
        }
        return out.toString();
    }

    private String[] pick2(String[][] options) {
        return options[below(options.length)];
    }
}
