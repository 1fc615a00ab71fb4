// The two JVM options the engine needs (the Vector API module, native access), checked up front with one line saying which to add.
package cria.backend;

import cria.CriaException;

/**
 * A program that forgot an option would otherwise meet a linkage error deep in the CPU backend
 * (the Vector API is an incubator module, absent unless added) or pages of JDK warnings at the
 * first native call; these checks turn both into a {@link CriaException} whose one-line message
 * names the option to add.
 */
public final class JvmOptions {
    private JvmOptions() {}

    /** @throws CriaException unless {@code jdk.incubator.vector} is in the boot layer */
    public static void requireVectorApi() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            throw new CriaException("Cria's CPU path needs the Vector API: add --add-modules jdk.incubator.vector to the java command line"
                    + " (Cria needs: java " + flags() + " ...)");
        }
    }

    /** @throws CriaException unless the module holding Cria may call native code */
    public static void requireNativeAccess() {
        if (!JvmOptions.class.getModule().isNativeAccessEnabled()) {
            throw new CriaException("Cria calls native code (its CPU kernels, CUDA): add " + nativeAccess()
                    + " to the java command line (Cria needs: java " + flags() + " ...)");
        }
    }

    /** The native-access option for where Cria sits: the class path, or its module on the module path. */
    private static String nativeAccess() {
        Module m = JvmOptions.class.getModule();
        return "--enable-native-access=" + (m.isNamed() ? m.getName() : "ALL-UNNAMED");
    }

    private static String flags() {
        return "--add-modules jdk.incubator.vector " + nativeAccess();
    }
}
