import { defineConfig } from "vite";

// pysandboxd serves the output from its data directory (<prefix>/share/pysandbox/web) under
// Content-Security-Policy: default-src 'self', so nothing may be inlined into index.html:
// every script and stylesheet is a file under assets/ with a content hash in its name (the
// server marks those immutable). Relative URLs keep the IDE working behind a path prefix.
export default defineConfig({
  base: "./",
  esbuild: { jsx: "automatic" },
  build: {
    outDir: process.env.PYSANDBOX_WEB_OUT_DIR ?? "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
    // React + CodeMirror are ~640 kB minified (~210 kB gzipped, served precompressed).
    chunkSizeWarningLimit: 700,
    rollupOptions: {
      onwarn(warning, warn) {
        // lucide-react marks its modules "use client" (for React Server Components); meaningless
        // in a client bundle.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
  },
});
