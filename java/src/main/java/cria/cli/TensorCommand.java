// `cria tensor FILE NAME [--rows N] -o OUT.f32`: the first rows of a tensor, dequantized exactly as ggml does, as raw float32.
package cria.cli;

import cria.CriaException;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** Dumps tensor rows as little-endian float32, for comparing Cria's decoding with other tools. */
@Command(name = "tensor", mixinStandardHelpOptions = true,
        description = {"Write rows of a tensor, dequantized, as float32 little-endian.",
            "Rows are written one after another from the first; the values are bit-for-bit what ggml's dequantize_row_* gives.",
            "Example: cria tensor model.gguf blk.0.ffn_down.weight --rows 16 -o down.f32"})
final class TensorCommand extends Verb {

    @Parameters(index = "0", paramLabel = "FILE", description = "the GGUF file")
    Path file;

    @Parameters(index = "1", paramLabel = "NAME", description = "the tensor's name, as 'cria info FILE' lists it")
    String name;

    @Option(names = "--rows", paramLabel = "N", description = "how many rows, from the first (default: all)")
    Long rows;

    @Option(names = {"-o", "--output"}, paramLabel = "OUT.f32", required = true, description = "the file to write")
    Path output;

    @Override
    public Integer call() {
        OutputFiles.check(output, "-o", OutputFiles.Kind.STREAM);
        try (GgufFile f = GgufFile.open(file)) {
            GgufTensorInfo info = f.tensor(name);
            if (info == null) {
                throw new CriaException(file + ": no tensor named '" + name + "' (the file has " + f.tensors().size()
                        + "); list them with 'cria info " + file + "'");
            }
            long available = info.rows();
            long n = rows == null ? available : rows;
            if (n < 1 || n > available) {
                throw new CriaException("--rows " + n + " is out of range: " + name + " in " + file + " has " + available
                        + " rows of " + info.rowLength() + " values; give 1 to " + available);
            }
            if (!Codecs.supports(info.type())) {
                throw new CriaException(file + ": tensor '" + name + "' is " + info.type() + ", which Cria cannot decode (it reads "
                        + Codecs.supportedList() + ")");
            }
            Tensor t = Tensor.of(f, info);
            write(t, n);
            out().printf("%s: %s %s: wrote %d rows x %d values as float32 little-endian (%s) to %s%n", name, info.type(),
                    info.shapeText(), n, info.rowLength(), Units.bytes(n * info.rowLength() * 4), output);
        }
        return 0;
    }

    private void write(Tensor t, long n) {
        int len = t.rowLength();
        float[] row = new float[len];
        ByteBuffer buf = ByteBuffer.allocate(len * 4).order(ByteOrder.LITTLE_ENDIAN);
        OutputFiles.write(output, "-o", OutputFiles.Kind.STREAM, os -> {
            for (long r = 0; r < n; r++) {
                t.dequantizeRow(r, row, 0);
                buf.clear();
                buf.asFloatBuffer().put(row);
                os.write(buf.array(), 0, len * 4);
            }
        });
    }
}
