// Training checkpoints: weights, AdamW moments, the step, the best weights and the run's history, written without ever breaking the last good one.
package cria.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.backend.Buf;
import cria.backend.TrainOps;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * One file, {@code checkpoint.bin} in the checkpoint directory: the magic {@code CRIACKPT}, a
 * version, a JSON header (the step reached, the recipe it belongs to, the best evaluation, the
 * evaluations without improvement, the loss history), then every tensor's values and its two
 * AdamW moments as little-endian float32 in {@link Params#stateful()} order, then the best weights when
 * there are any. The data position and the random state are functions of the step and the seed
 * (windows and dropout masks are drawn from counters), so the step restores them. It is written
 * to a temporary file, forced to disk and renamed over the previous one: a kill at any moment
 * leaves the last complete checkpoint in place.
 */
public final class Checkpoint {
    static final String FILE = "checkpoint.bin";
    private static final byte[] MAGIC = "CRIACKPT".getBytes(StandardCharsets.US_ASCII);
    private static final int VERSION = 1;
    private static final ObjectMapper JSON = new ObjectMapper();

    private Checkpoint() {}

    /** What a run has reached, beyond its tensors. */
    static final class State {
        int step;
        int badEvals;
        Trainer.EvalResult best;
        float[][] bestWeights;
        final List<Trainer.StepResult> history = new ArrayList<>();
        final List<Trainer.EvalResult> evals = new ArrayList<>();
    }

    /** The checkpoint file of a directory. */
    public static Path file(Path dir) {
        return dir.resolve(FILE);
    }

    static Path save(Path dir, Params p, TrainOps ops, State st, String recipe) {
        Path target = file(dir);
        Path tmp = dir.resolve(FILE + ".tmp");
        try {
            Files.createDirectories(dir);
            ObjectNode h = JSON.createObjectNode();
            h.put("step", st.step);
            h.put("recipe", recipe);
            h.put("badEvals", st.badEvals);
            h.put("hasBest", st.bestWeights != null);
            if (st.best != null) {
                h.putArray("best").add(st.best.step()).add(st.best.loss());
            }
            ArrayNode hist = h.putArray("history");
            for (Trainer.StepResult r : st.history) {
                hist.addArray().add(r.step()).add(r.loss()).add(r.lr()).add(r.gradNorm()).add(r.tokensPerSecond()).add(r.elapsedSeconds());
            }
            ArrayNode ev = h.putArray("evals");
            for (Trainer.EvalResult e : st.evals) {
                ev.addArray().add(e.step()).add(e.loss()).add(e.best());
            }
            byte[] header = JSON.writeValueAsBytes(h);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer head = ByteBuffer.allocate(16 + header.length).order(ByteOrder.LITTLE_ENDIAN);
                head.put(MAGIC).putInt(VERSION).putInt(header.length).put(header).flip();
                writeFully(ch, head);
                ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
                float[] scratch = new float[0];
                for (Params.Param q : p.stateful()) {
                    for (Buf b : new Buf[] {q.value, q.m, q.v}) {
                        if (scratch.length != q.size()) {
                            scratch = new float[Math.toIntExact(q.size())];
                        }
                        ops.read(b, scratch);
                        writeFloats(ch, buf, scratch);
                    }
                }
                if (st.bestWeights != null) {
                    for (float[] w : st.bestWeights) {
                        writeFloats(ch, buf, w);
                    }
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            return target;
        } catch (IOException e) {
            throw new CriaException("cannot write the checkpoint " + target + ": " + e.getMessage() + " (is --checkpoint a writable directory?)");
        }
    }

    static State load(Path dir, Params p, TrainOps ops, String recipe) {
        if (dir == null) {
            throw new CriaException("--resume needs --checkpoint DIR (the directory the interrupted run saved into)");
        }
        Path f = file(dir);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer head = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, head, f);
            head.flip();
            byte[] magic = new byte[8];
            head.get(magic);
            if (!java.util.Arrays.equals(magic, MAGIC) || head.getInt() != VERSION) {
                throw new CriaException(f + " is not a Cria checkpoint (of this version)");
            }
            int hl = head.getInt();
            if (hl < 2 || hl > size - 16 || hl > 1 << 28) {
                throw new CriaException(f + ": corrupt checkpoint header (length " + hl + ")");
            }
            ByteBuffer hb = ByteBuffer.allocate(hl);
            readFully(ch, hb, f);
            JsonNode h = JSON.readTree(hb.array());
            String was = h.path("recipe").asText();
            if (!was.equals(recipe)) {
                throw new CriaException(f + " belongs to another run: it was made with [" + was + "], this run is [" + recipe
                        + "]; resume with the same model, data and options, or use another --checkpoint directory");
            }
            long tensors = 0;
            for (Params.Param q : p.stateful()) {
                tensors += q.size();
            }
            boolean hasBest = h.path("hasBest").asBoolean(false);
            long expect = 16L + hl + 4L * tensors * (hasBest ? 4 : 3);
            if (size != expect) {
                throw new CriaException(f + " is " + size + " bytes, expected " + expect + ": truncated or corrupt; delete it to start over");
            }
            State st = new State();
            st.step = h.path("step").asInt();
            st.badEvals = h.path("badEvals").asInt();
            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            buf.flip();
            for (Params.Param q : p.stateful()) {
                for (Buf b : new Buf[] {q.value, q.m, q.v}) {
                    float[] vals = new float[Math.toIntExact(q.size())];
                    buf = readFloats(ch, buf, vals, f);
                    ops.write(b, vals);
                }
            }
            if (hasBest) {
                st.bestWeights = new float[p.stateful().size()][];
                for (int i = 0; i < p.stateful().size(); i++) {
                    st.bestWeights[i] = new float[Math.toIntExact(p.stateful().get(i).size())];
                    buf = readFloats(ch, buf, st.bestWeights[i], f);
                }
            }
            for (JsonNode r : h.path("history")) {
                st.history.add(new Trainer.StepResult(r.get(0).asInt(), 0, r.get(1).asDouble(), r.get(2).asDouble(), r.get(3).asDouble(),
                        r.get(4).asDouble(), r.get(5).asDouble()));
            }
            for (JsonNode e : h.path("evals")) {
                double l = e.get(1).asDouble();
                st.evals.add(new Trainer.EvalResult(e.get(0).asInt(), l, Math.exp(l), e.get(2).asBoolean()));
            }
            if (h.has("best")) {
                double l = h.get("best").get(1).asDouble();
                st.best = new Trainer.EvalResult(h.get("best").get(0).asInt(), l, Math.exp(l), true);
            }
            return st;
        } catch (NoSuchFileException e) {
            throw new CriaException("--resume: no checkpoint in " + dir + " (" + FILE + " is missing); run without --resume to start");
        } catch (IOException e) {
            throw new CriaException("cannot read the checkpoint " + f + ": " + e.getMessage());
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static void writeFloats(FileChannel ch, ByteBuffer buf, float[] v) throws IOException {
        int i = 0;
        while (i < v.length) {
            buf.clear();
            int m = Math.min(v.length - i, buf.capacity() / 4);
            buf.asFloatBuffer().put(v, i, m);
            buf.limit(m * 4);
            writeFully(ch, buf);
            i += m;
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, Path f) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new CriaException(f + ": truncated checkpoint");
            }
        }
    }

    private static ByteBuffer readFloats(FileChannel ch, ByteBuffer buf, float[] v, Path f) throws IOException {
        int i = 0;
        while (i < v.length) {
            if (buf.remaining() < 4) {
                buf.compact();
                if (ch.read(buf) < 0) {
                    throw new CriaException(f + ": truncated checkpoint");
                }
                buf.flip();
                continue;
            }
            int m = Math.min(v.length - i, buf.remaining() / 4);
            buf.asFloatBuffer().get(v, i, m);
            buf.position(buf.position() + m * 4);
            i += m;
        }
        return buf;
    }
}
