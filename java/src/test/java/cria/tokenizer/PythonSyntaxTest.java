// Python syntax in chat templates (str methods, slices, keyword arguments with operators): rewritten and rendered with Python's meaning.
package cria.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Each expected value is what Python (Jinja2) gives for the same expression; the templates are
 * written for this test in the style of Qwen3's and Gemma 3's (which use all three forms).
 */
class PythonSyntaxTest {
    static final List<ChatTemplate.Message> CONVERSATION = List.of(
            new ChatTemplate.Message("system", "Be brief."),
            new ChatTemplate.Message("user", "Hi"),
            new ChatTemplate.Message("assistant", "<think>\nhmm\n</think>\n\nHello!"),
            new ChatTemplate.Message("user", "  2+2?  "));

    static String render(String template) {
        return ChatTemplate.jinja(template, "<s>", "</s>").render(CONVERSATION, false);
    }

    @Test
    void stringMethodsHavePythonsMeaning() {
        assertEquals("yes|no|yes", render("{{ 'yes' if 'abc'.startswith('a') else 'no' }}|{{ 'yes' if 'abc'.endswith('b') else 'no' }}"
                + "|{{ 'yes' if 'abc'.startswith(['x', 'ab']) else 'no' }}"));
        assertEquals("[xab]|[ab\n]|[b]|[  a b]", render("[{{ 'xab\n'.rstrip('\n') }}]|[{{ '\nab\n'.lstrip('\n') }}]|[{{ 'aba'.strip('a') }}]"
                + "|[{{ '  a b \t'.rstrip() }}]"));
        // split with a separator keeps empty parts and is not a regular expression; without one it splits on runs of space
        assertEquals("3|a,,b|2|x|b", render("{{ 'a.,.b'.split('.')|length }}|{{ 'a..b'.split('.')|join(',') }}|{{ ' x  y '.split()|length }}"
                + "|{{ ' x  y '.split()[0] }}|{{ 'a</think>b'.split('</think>')[-1] }}"));
        assertEquals("a|b,c", render("{{ 'a,b,c'.split(',', 1)[0] }}|{{ 'a,b,c'.split(',', 1)[1] }}"));
        assertEquals("ABC|abc|Hello World|Hello", render("{{ 'aBc'.upper() }}|{{ 'aBc'.lower() }}|{{ 'hello wORLD'.title() }}|{{ 'hELLO'.capitalize() }}"));
        assertEquals("2|1|-1|a-b", render("{{ 'abab'.count('ab') }}|{{ 'abc'.find('b') }}|{{ 'abc'.find('z') }}|{{ '-'.join(['a', 'b']) }}"));
        // chains: the result of one method is the receiver of the next
        assertEquals("hmm", render("{{ messages[2].content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }}"));
        assertEquals("Hello!", render("{{ messages[2].content.split('</think>')[-1].lstrip('\n') }}"));
    }

    @Test
    void slicesHavePythonsMeaning() {
        assertEquals("user,assistant,user,system", render("{{ messages[::-1]|map(attribute='role')|join(',') }}"));
        assertEquals("3|user", render("{{ messages[1:]|length }}|{{ messages[1:][0].role }}"));
        assertEquals("el|hel|llo|olleh|hlo|ol|", render("{{ 'hello'[1:3] }}|{{ 'hello'[:3] }}|{{ 'hello'[-3:] }}|{{ 'hello'[::-1] }}"
                + "|{{ 'hello'[::2] }}|{{ 'hello'[-1:-4:-2] }}|{{ 'hello'[4:1] }}"));
        assertEquals("system,assistant", render("{{ messages[0:4:2]|map(attribute='role')|join(',') }}"));
        assertEquals("2+2?", render("{{ messages[-1].content|trim }}"));
        CriaException e = assertThrows(CriaException.class, () -> render("{{ 'abc'[::0] }}"));
        assertTrue(e.getMessage().contains("slice step cannot be zero"), e.getMessage());
    }

    @Test
    void keywordArgumentsTakeWholeExpressions() {
        // Qwen3's template: the index of the last user query, found walking the conversation backwards
        String t = "{%- set ns = namespace(multi=true, last=messages|length - 1) %}"
                + "{%- for m in messages[::-1] %}{%- set i = (messages|length - 1) - loop.index0 %}"
                + "{%- if ns.multi and m.role == 'user' and not m.content.startswith('<tool') %}"
                + "{%- set ns.multi = false %}{%- set ns.last = i %}{%- endif %}{%- endfor %}{{ ns.last }}";
        assertEquals("3", render(t));
    }

    @Test
    void dictMethods() {
        assertEquals("a=1;b=2;|a,b|1|9", render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"
                + "|{{ {'a': 1, 'b': 2}.keys()|join(',') }}|{{ {'a': 1}.get('a') }}|{{ {'a': 1}.get('z', 9) }}"));
    }

    @Test
    void textOutsideTagsAndInsideStringsIsLeftAlone() {
        String src = "x.startswith('a') [1:2] {{ 'y.strip() [1:]' }} {# c.split(',')[1:] #}{% raw %}{{ a[1:] }}{% endraw %}";
        assertEquals(src.replace("{{ 'y.strip() [1:]' }}", "{{ 'y.strip() [1:]' }}"), PythonSyntax.rewrite(src));
        assertEquals("x.startswith('a') [1:2] y.strip() [1:] {{ a[1:] }}", render(src));
        // lstrip_blocks as Jinja2 has it: spaces before a tag go only when the tag starts its line
        assertEquals("a b|\nc", render("a {% if true %}b{% endif %}|\n  {% if true %}c{% endif %}\n"));
        assertEquals("{{ py_slice(a, 1, none, none) }}", PythonSyntax.rewrite("{{ a[1:] }}"));
        assertEquals("{{ py_strip(py_split(a.b[0], ',')[1]) }}", PythonSyntax.rewrite("{{ a.b[0].split(',')[1].strip() }}"));
        assertEquals("{% set ns = namespace(a=(x - 1),b=(2)) %}", PythonSyntax.rewrite("{% set ns = namespace(a=x - 1,b=2) %}"));
        assertEquals("{{ a == b }}{{ f(x==1) }}", PythonSyntax.rewrite("{{ a == b }}{{ f(x==1) }}"));
    }

    @Test
    void aMethodOnTheWrongTypeIsAOneLineTemplateError() {
        CriaException e = assertThrows(CriaException.class, () -> render("{{ messages.startswith('a') }}"));
        assertTrue(e.getMessage().contains("'list' object has no attribute 'startswith'"), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), e.getMessage());
    }
}
