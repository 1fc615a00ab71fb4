// The chat page in a real headless browser (Debian's chromium and chromedriver): streamed text appears and grows, Stop ends it, the key is sent.
package cria.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.engine.Model;
import cria.engine.ModelOptions;
import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.chromium.ChromiumNetworkConditions;

/** Drives the page the server ships at GET / as a person would: type, send, watch, stop. */
class ChatPageBrowserTest {
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final String KEY = "page-test-key";

    @TempDir
    static Path tmp;
    static Model model;
    static OpenAiServer server;
    static ChromeDriver driver;
    static String base;

    @BeforeAll
    static void start() {
        Assumptions.assumeTrue(Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER),
                "skipped: no headless browser (apt-get install chromium chromium-driver gives /usr/bin/chromium and /usr/bin/chromedriver)");
        // -Dcria.chatpage.url=URL: check a server already running there (it must serve this page at / and take KEY)
        base = System.getProperty("cria.chatpage.url");
        if (base == null) {
            model = Model.load(OpenAiClientTest.synth(tmp, 512), ModelOptions.defaults().withBackend("cpu").withThreads(2));
            server = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withApiKey(KEY).withContextLength(512).withParallel(2));
            base = "http://127.0.0.1:" + server.port();
        }
        ChromeOptions o = new ChromeOptions();
        o.setBinary(CHROMIUM.toFile());
        o.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1100,800");
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(new File(CHROMEDRIVER.toString())).build();
        driver = new ChromeDriver(service, o);
    }

    @AfterAll
    static void stop() {
        if (driver != null) {
            driver.quit();
        }
        if (server != null) {
            server.close();
        }
        if (model != null) {
            model.close();
        }
    }

    Object js(String script, Object... args) {
        return ((JavascriptExecutor) driver).executeScript(script, args);
    }

    static void await(String what, Supplier<Boolean> condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (!condition.get()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the page did not get there within 15 s: " + what + "; the conversation: "
                        + driver.findElement(By.id("messages")).getText() + " | status: " + driver.findElement(By.id("status")).getText());
            }
            Thread.sleep(25);
        }
    }

    void set(String id, String value) {
        WebElement e = driver.findElement(By.id(id));
        e.clear();
        e.sendKeys(value);
        js("arguments[0].dispatchEvent(new Event('change'))", e);
    }

    List<WebElement> assistants() {
        return driver.findElements(By.cssSelector("#messages .msg.assistant"));
    }

    String text(WebElement msg) {
        return (String) js("return arguments[0].querySelector('.text').textContent", msg);
    }

    /** Records every length the newest assistant message's text takes, to see it grow in steps. */
    void watchLengths() {
        js("window.__lengths = [];"
                + "new MutationObserver(() => { const m = document.querySelectorAll('#messages .msg.assistant .text');"
                + "  if (m.length) window.__lengths.push(m[m.length - 1].textContent.length); })"
                + ".observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});");
    }

    @Test
    void sendStreamsTheAnswerAndStopEndsIt() throws Exception {
        driver.get(base + "/");
        assertEquals("Cria chat", driver.getTitle());
        set("api_key", KEY);
        set("system", "You are a storyteller.");
        set("temperature", "0");
        set("max_tokens", "40");
        set("seed", "3");
        watchLengths();
        // a link of 20 kB/s: the chunks of a fast local model reach the page in several reads, as over a network
        driver.setNetworkConditions(new ChromiumNetworkConditions().setDownloadThroughput(20_000).setUploadThroughput(1_000_000));
        try {
            driver.findElement(By.id("input")).sendKeys("Once upon a time");
            driver.findElement(By.id("send")).click();
            await("an assistant message with text", () -> !assistants().isEmpty() && !text(assistants().get(0)).isEmpty());
            await("the answer finished", () -> driver.findElements(By.cssSelector("#messages .msg.assistant .meta")).size() == 1);
        } finally {
            driver.deleteNetworkConditions();
        }
        String shown = text(assistants().get(0));
        @SuppressWarnings("unchecked")
        List<Long> lengths = (List<Long>) js("return window.__lengths");
        long steps = lengths.stream().filter(n -> n > 0).distinct().count();
        assertTrue(steps > 1, "the text grew piece by piece, not at once: lengths " + lengths);
        // the page shows what the API answers without streaming for the same settings
        String body = "{\"messages\":[{\"role\":\"system\",\"content\":\"You are a storyteller.\"},{\"role\":\"user\",\"content\":\"Once upon a time\"}],"
                + "\"temperature\":0,\"top_p\":0.95,\"max_tokens\":40,\"seed\":3}";
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(base + "/v1/chat/completions"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + KEY)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        String content = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.body()).at("/choices/0/message/content").asText();
        assertEquals(content, shown);
        String meta = driver.findElement(By.cssSelector("#messages .msg.assistant .meta")).getText();
        assertTrue(meta.contains("finish: "), meta);
        assertTrue(meta.matches(".*\\d+ prompt \\+ \\d+ generated tokens.*"), "usage from include_usage: " + meta);

        // a long answer over a slow link: Stop aborts the stream while it runs
        driver.setNetworkConditions(new ChromiumNetworkConditions().setDownloadThroughput(2000).setUploadThroughput(1_000_000));
        try {
            set("temperature", "0");
            set("max_tokens", "300");
            driver.findElement(By.id("input")).sendKeys("Tell me a very long story");
            driver.findElement(By.id("send")).click();
            await("the second answer streaming", () -> assistants().size() == 2 && !text(assistants().get(1)).isEmpty());
            driver.findElement(By.id("stop")).click();
            await("the page back to idle", () -> driver.findElement(By.id("stop")).getAttribute("disabled") != null);
        } finally {
            driver.deleteNetworkConditions();
        }
        String stopped = driver.findElements(By.cssSelector("#messages .msg.assistant .meta")).get(1).getText();
        assertTrue(stopped.contains("finish: stopped"), stopped);
        assertEquals("stopped", driver.findElement(By.id("status")).getText());
        assertFalse(driver.findElement(By.id("send")).getAttribute("disabled") != null, "send enabled again");
        // the conversation goes on after a stop: a third message gets its answer
        set("max_tokens", "8");
        driver.findElement(By.id("input")).sendKeys("And then?");
        driver.findElement(By.id("send")).click();
        await("the third answer", () -> driver.findElements(By.cssSelector("#messages .msg.assistant .meta")).size() == 3);
        assertEquals(3, driver.findElements(By.cssSelector("#messages .msg.user")).size());
    }

    @Test
    void aWrongKeyShowsTheServersErrorAndTheKeyIsKept() throws Exception {
        driver.get(base + "/");
        set("api_key", "wrong");
        set("max_tokens", "4");
        driver.findElement(By.id("input")).sendKeys("Hello");
        driver.findElement(By.id("send")).click();
        await("an error message", () -> !driver.findElements(By.id("error")).isEmpty());
        String error = driver.findElement(By.id("error")).getText();
        assertTrue(error.startsWith("401"), "status and the server's message: " + error);
        driver.navigate().refresh();
        assertEquals("wrong", driver.findElement(By.id("api_key")).getAttribute("value"), "the key is kept in localStorage");
        set("api_key", KEY);
        driver.findElement(By.id("input")).sendKeys("Hello");
        driver.findElement(By.id("send")).click();
        await("an answer with the right key", () -> driver.findElements(By.cssSelector("#messages .msg.assistant .meta")).size() == 1);
        assertTrue(driver.findElements(By.id("error")).isEmpty());
    }
}
