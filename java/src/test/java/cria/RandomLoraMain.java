// Test-scope tool: writes a random LoRA adapter for a base model (for tools/lora-vs-llamacpp and manual checks).
package cria;

import java.nio.file.Path;

/**
 * {@code RandomLoraMain BASE.gguf OUT.gguf [RANK [ALPHA [SIZE [SEED]]]]}: an adapter of rank RANK
 * (default 8) with {@code adapter.lora.alpha} ALPHA (default 16) on every attention and
 * feed-forward product of BASE and its output matrix, random with seed SEED (default 1), its
 * correction at scale 1 of RMS SIZE (default 0.1) times each base tensor's RMS
 * ({@link TestAdapters#random}). Until {@code cria finetune} trains real ones:
 * <pre>java -cp "target/test-classes:target/classes:target/lib/*" cria.RandomLoraMain base.gguf lora.gguf 8 16 0.1</pre>
 */
public final class RandomLoraMain {
    private RandomLoraMain() {}

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: RandomLoraMain BASE.gguf OUT.gguf [RANK [ALPHA [SIZE [SEED]]]]");
            System.exit(2);
        }
        Path base = Path.of(args[0]);
        Path out = Path.of(args[1]);
        int rank = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        float alpha = args.length > 3 ? Float.parseFloat(args[3]) : 16f;
        double size = args.length > 4 ? Double.parseDouble(args[4]) : 0.1;
        long seed = args.length > 5 ? Long.parseLong(args[5]) : 1;
        double s = alpha != 0 ? alpha / rank : 1.0;
        TestAdapters.write(out, alpha, TestAdapters.random(base, rank, seed, size, s, TestAdapters.ALL));
        System.out.println(out + ": rank " + rank + ", alpha " + alpha + ", correction RMS " + size + " x the base tensor's at scale 1");
    }
}
