// `cria info FILE [--json]`: what a GGUF file holds: architecture, hyper-parameters, tokenizer, metadata, tensors.
package cria.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** Prints a GGUF file's metadata (long arrays summarized) and tensor table, as text or JSON. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = {"Show what a GGUF file holds: architecture, hyper-parameters, tokenizer, metadata and the tensor table.",
            "Example: cria info model.gguf"})
final class InfoCommand extends Verb {

    @Parameters(index = "0", paramLabel = "FILE", description = "the GGUF file")
    Path file;

    @Option(names = "--json", description = "print one JSON document instead of text")
    boolean json;

    @Option(names = "--items", paramLabel = "N", defaultValue = "8",
            description = "array elements shown before '...' (default: ${DEFAULT-VALUE}; JSON shows up to N too)")
    int items;

    @Override
    public Integer call() {
        try (GgufFile f = GgufFile.open(file)) {
            if (json) {
                printJson(f);
            } else {
                printText(f);
            }
        }
        return 0;
    }

    private void printText(GgufFile f) {
        PrintWriter out = out();
        Metadata md = f.metadata();
        long paramCount = 0;
        long tensorBytes = 0;
        Map<GgmlType, Integer> typeCounts = new EnumMap<>(GgmlType.class);
        for (GgufTensorInfo t : f.tensors()) {
            paramCount += t.elements();
            tensorBytes += t.byteSize();
            typeCounts.merge(t.type(), 1, Integer::sum);
        }
        out.printf("file:          %s%n", f.path());
        out.printf("format:        GGUF v%d, %s, %d metadata keys, %d tensors, alignment %d%n", f.version(),
                Units.bytes(f.fileSize()), md.size(), f.tensors().size(), f.alignment());
        String arch = md.string("general.architecture").orElse("(not set)");
        out.printf("architecture:  %s%s%n", arch, md.string("general.name").map(n -> " (" + n + ")").orElse(""));
        if (!f.tensors().isEmpty()) {
            out.printf("parameters:    %s in %s; types: %s%n", Units.count(paramCount), Units.bytes(tensorBytes), typeCounts);
        }
        String hp = ModelSummary.hyperParameters(md, arch);
        if (!hp.isEmpty()) {
            out.printf("hyper-params:  %s%n", hp);
        }
        out.printf("tokenizer:     %s%n", ModelSummary.tokenizer(md));
        int factorized = 0;
        for (GgufTensorInfo t : f.tensors()) {
            factorized += t.name().endsWith(cria.model.LowRankTensors.SUFFIX_A + ".weight") ? 1 : 0;
        }
        if (factorized > 0) {
            out.printf("low-rank:      %d block matrices stored as factors (%s, keep %s)%n", factorized,
                    md.string(cria.model.LowRankTensors.KEY_METHOD).orElse("?"),
                    md.number(cria.model.LowRankTensors.KEY_KEEP).map(k -> String.format(java.util.Locale.ROOT, "%.2f", k)).orElse("?"));
        }
        out.println();
        out.println("metadata:");
        int w = 0;
        for (String k : md.asMap().keySet()) {
            w = Math.max(w, k.length());
        }
        for (Map.Entry<String, GgufValue> e : md.asMap().entrySet()) {
            GgufValue v = e.getValue();
            String type = v.isArray() ? "arr" : v.type().name().toLowerCase();
            out.printf("  %-" + w + "s  %-7s %s%n", e.getKey(), type, v.display(items));
        }
        out.println();
        out.println("tensors:");
        int nw = 4;
        for (GgufTensorInfo t : f.tensors()) {
            nw = Math.max(nw, t.name().length());
        }
        out.printf("  %5s  %-" + nw + "s  %-7s  %-22s  %12s  %12s%n", "#", "name", "type", "shape", "bytes", "offset");
        List<GgufTensorInfo> ts = f.tensors();
        for (int i = 0; i < ts.size(); i++) {
            GgufTensorInfo t = ts.get(i);
            out.printf("  %5d  %-" + nw + "s  %-7s  %-22s  %12d  %12d%n", i, t.name(), t.type(), t.shapeText(), t.byteSize(), t.offset());
        }
        out.flush();
    }

    private void printJson(GgufFile f) {
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.put("file", f.path().toString());
        root.put("version", f.version());
        root.put("file_size", f.fileSize());
        root.put("alignment", f.alignment());
        root.put("data_offset", f.dataOffset());
        Metadata md = f.metadata();
        ObjectNode meta = root.putObject("metadata");
        for (Map.Entry<String, GgufValue> e : md.asMap().entrySet()) {
            meta.set(e.getKey(), Json.value(e.getValue(), items));
        }
        ArrayNode tensors = root.putArray("tensors");
        for (GgufTensorInfo t : f.tensors()) {
            ObjectNode o = tensors.addObject();
            o.put("name", t.name());
            o.put("type", t.type().name());
            ArrayNode shape = o.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            o.put("bytes", t.byteSize());
            o.put("offset", t.offset());
        }
        out().println(Json.write(root));
        out().flush();
    }
}
