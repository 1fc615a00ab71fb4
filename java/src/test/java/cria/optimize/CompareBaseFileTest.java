// The scratch file of base logits: rows come back bit for bit, in order, on every pass, across buffer boundaries.
package cria.optimize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CompareBaseFileTest {
    @Test
    void rowsComeBackInOrderOnEveryPassAndTheFileIsDeleted(@TempDir Path dir) {
        int vocab = 100_003; // 400 KB rows: a 1 MiB buffer holds two and a half
        int rows = 7;
        float[][] want = new float[rows][vocab];
        Random r = new Random(5);
        Path file;
        try (CompareBaseFile f = CompareBaseFile.create(dir, rows, vocab)) {
            file = f.path(); // on Unix already unlinked: DELETE_ON_CLOSE removes the name at once
            for (float[] row : want) {
                for (int i = 0; i < vocab; i++) {
                    row[i] = (float) r.nextGaussian();
                }
                f.write(row);
            }
            assertThrows(IllegalStateException.class, () -> f.write(want[0]));
            for (int pass = 0; pass < 2; pass++) {
                f.rewind();
                for (int k = 0; k < rows; k++) {
                    assertArrayEquals(want[k], f.next(), "pass " + pass + " row " + k);
                }
                assertThrows(IllegalStateException.class, f::next);
            }
        }
        assertFalse(Files.exists(file), "the scratch file outlived close()");
        assertEquals(CompareBaseFile.bytesFor(rows, vocab), 4L * rows * vocab);
    }

    @Test
    void aMissingFolderOrTooLittleSpaceIsOneLine(@TempDir Path dir) {
        CriaException e = assertThrows(CriaException.class, () -> CompareBaseFile.create(dir.resolve("nope"), 10, 10));
        assertTrue(e.getMessage().contains("no such folder"), e.getMessage());
        // a petabyte of logits does not fit anywhere here
        CriaException big = assertThrows(CriaException.class, () -> CompareBaseFile.create(dir, 1L << 38, 1 << 12));
        assertTrue(big.getMessage().contains("--tmp") && big.getMessage().contains("MiB"), big.getMessage());
    }
}
