// Writes a gzip twin (name.gz) next to every compressible file of the build, so that pysandboxd
// can answer Accept-Encoding: gzip without compressing at request time. Twins that would not
// save anything are not written.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, constants } from "node:zlib";

const outDir = process.env.PYSANDBOX_WEB_OUT_DIR ?? "dist";
const compressible = /\.(html|js|css|svg|json|txt)$/;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      walk(path);
    } else if (compressible.test(name)) {
      const data = readFileSync(path);
      const gz = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
      if (gz.length < data.length) writeFileSync(`${path}.gz`, gz);
    }
  }
}

walk(outDir);
