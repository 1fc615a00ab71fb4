// The base model's logits at every scored position, kept in a temporary file so that the models of a comparison run one at a time in bounded memory.
package cria.optimize;

import cria.CriaException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A scratch file of {@code positions × vocab} float32 logits, written once in order (the base
 * model's pass) and then read back in the same order once per compared model. The raw logits are
 * kept, not log-probabilities, so that a model identical to the base gives a KL divergence of
 * exactly 0. Memory stays at one buffer of at least one row. The file is opened with
 * DELETE_ON_CLOSE: on Unix its name is removed at once (the space is freed when the process
 * closes it or dies), elsewhere it is deleted on {@link #close()}.
 */
public final class CompareBaseFile implements AutoCloseable {
    private static final int BUFFER = 1 << 20;

    private final FileChannel ch;
    private final Path path;
    private final int vocab;
    private final long positions;
    private final ByteBuffer buf;
    private final float[] row;
    private long written;
    private long readPos = -1;
    private long read;

    private CompareBaseFile(FileChannel ch, Path path, int vocab, long positions) {
        this.ch = ch;
        this.path = path;
        this.vocab = vocab;
        this.positions = positions;
        this.buf = ByteBuffer.allocateDirect(Math.max(BUFFER, vocab * Float.BYTES)).order(ByteOrder.LITTLE_ENDIAN);
        this.row = new float[vocab];
    }

    /** Bytes the file takes for {@code positions} rows of {@code vocab} logits. */
    public static long bytesFor(long positions, int vocab) {
        return Math.multiplyExact(Math.multiplyExact(positions, (long) vocab), (long) Float.BYTES);
    }

    /**
     * Creates the scratch file in folder {@code dir}, after checking that it exists and has room
     * for {@code positions × vocab} floats.
     *
     * @throws CriaException when the folder is missing or too small, saying how much is needed
     */
    public static CompareBaseFile create(Path dir, long positions, int vocab) {
        if (vocab <= 0 || positions <= 0) {
            throw new IllegalArgumentException("positions " + positions + ", vocab " + vocab);
        }
        long bytes = bytesFor(positions, vocab);
        if (!Files.isDirectory(dir)) {
            throw new CriaException(dir + ": no such folder for the base model's logits (--tmp)");
        }
        try {
            long free = Files.getFileStore(dir).getUsableSpace();
            if (free < bytes + (64L << 20)) {
                throw new CriaException(String.format(java.util.Locale.ROOT,
                        "the base model's logits need %.1f MiB of scratch space but %s has %.1f MiB free; give another folder with --tmp or fewer --chunks",
                        bytes / 1048576.0, dir, free / 1048576.0));
            }
            Path p = Files.createTempFile(dir, "cria-compare-", ".logits");
            FileChannel ch = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.DELETE_ON_CLOSE);
            return new CompareBaseFile(ch, p, vocab, positions);
        } catch (IOException e) {
            throw new CriaException(dir + ": cannot create the scratch file for the base model's logits: " + e.getMessage());
        }
    }

    /** The scratch file's path (on Unix already gone from its folder). */
    public Path path() {
        return path;
    }

    /** Appends the first {@code vocab} values of {@code logits} as the next position's row. */
    public void write(float[] logits) {
        if (written == positions) {
            throw new IllegalStateException("all " + positions + " rows are written");
        }
        if (buf.remaining() < vocab * Float.BYTES) {
            flush();
        }
        buf.asFloatBuffer().put(logits, 0, vocab);
        buf.position(buf.position() + vocab * Float.BYTES);
        written++;
    }

    /** Writes out what is buffered; then {@link #next()} reads from the first row. */
    public void rewind() {
        if (readPos < 0) {
            flush();
        }
        readPos = 0;
        read = 0;
        buf.clear().limit(0);
    }

    /** The next row's logits, in an array that the next call reuses. */
    public float[] next() {
        if (readPos < 0) {
            throw new IllegalStateException("rewind() before reading");
        }
        if (read == written) {
            throw new IllegalStateException("read past the " + written + " rows written");
        }
        int rowBytes = vocab * Float.BYTES;
        if (buf.remaining() < rowBytes) {
            buf.compact();
            try {
                while (buf.position() < rowBytes) {
                    int n = ch.read(buf, readPos);
                    if (n < 0) {
                        throw new IOException("unexpected end of " + path);
                    }
                    readPos += n;
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            buf.flip();
        }
        FloatBuffer fb = buf.asFloatBuffer();
        fb.get(row, 0, vocab);
        buf.position(buf.position() + rowBytes);
        read++;
        return row;
    }

    private void flush() {
        buf.flip();
        try {
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
        } catch (IOException e) {
            throw new CriaException(path + ": cannot write the base model's logits: " + e.getMessage());
        }
        buf.clear();
    }

    @Override
    public void close() {
        try {
            ch.close();
        } catch (IOException e) {
            // the file is opened DELETE_ON_CLOSE; nothing more to do
        }
    }
}
