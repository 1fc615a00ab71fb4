// What the story generators share: a story built from sentence templates whose slots and alternatives a seeded SplitMix64 stream fills.
package cria.train;

import java.util.HashMap;
import java.util.Map;

/**
 * The template language of {@link StoryCorpus} and {@link StoryTasks}: in a template,
 * {@code {slot}} takes the story's word for the slot and {@code [a|b|c]} one alternative at random
 * (alternatives may hold slots and alternatives of their own). Random numbers come from
 * SplitMix64 ({@code state += 0x9E3779B97F4A7C15; mix(state)}, as {@link Windows}), so a story
 * depends only on the seed.
 */
abstract class StoryTemplates {
    /** The words of the story being told, by slot. */
    final Map<String, String> slots = new HashMap<>();
    /** The story being told. */
    final StringBuilder story = new StringBuilder(1024);
    private long state;

    StoryTemplates(long seed) {
        this.state = seed;
    }

    /** Appends a sentence made from {@code template}. */
    final void say(String template) {
        if (!story.isEmpty()) {
            story.append(' ');
        }
        fill(template, story);
    }

    /** Appends {@code t} with its slots and alternatives filled. */
    final void fill(String t, StringBuilder out) {
        for (int i = 0; i < t.length(); i++) {
            char c = t.charAt(i);
            if (c == '{') {
                int end = t.indexOf('}', i);
                String key = t.substring(i + 1, end);
                String v = slots.get(key);
                if (v == null) {
                    throw new IllegalStateException("no word for {" + key + "} in: " + t);
                }
                out.append(v);
                i = end;
            } else if (c == '[') {
                int end = t.indexOf(']', i);
                String[] alts = t.substring(i + 1, end).split("\\|", -1);
                fill(alts[below(alts.length)], out);
                i = end;
            } else {
                out.append(c);
            }
        }
    }

    /** Sets a slot's word (a value with slots is filled first). */
    final void put(String key, String value) {
        if (value.indexOf('{') >= 0) {
            StringBuilder sb = new StringBuilder();
            fill(value, sb);
            value = sb.toString();
        }
        slots.put(key, value);
    }

    /** A number in [0, n). */
    final int below(int n) {
        state += 0x9E3779B97F4A7C15L;
        return (int) Long.remainderUnsigned(Windows.mix(state) >>> 11, n);
    }

    /** One of the options. */
    final String pick(String... options) {
        return options[below(options.length)];
    }
}
