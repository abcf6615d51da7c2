// Offline validation of rendered Kubernetes and Cloud Run (Knative Serving) manifests.
//
//   node validate-manifests.mjs OUT_DIR NAME=FILE.json...
//
// Each FILE.json holds an array of API objects (kustomize output converted by run.sh). Two
// independent checks, both from schemas shipped in npm packages, installed by run.sh into a
// cache outside the repository; run.sh copies this file next to that node_modules (ES modules
// resolve bare imports from the importing file's directory, NODE_PATH does not apply):
//   1. kubernetes-models / @kubernetes-models/knative: the upstream OpenAPI schemas compiled to
//      validators (types, enums, formats, required fields) -> model.validate().
//   2. TypeScript over the same packages' type declarations: every object becomes an object
//      literal passed to its model's constructor, and tsc's excess-property check rejects
//      unknown fields (a misspelt `securityContex` passes the OpenAPI schemas, which allow
//      additional properties, but not this).
// Writes OUT_DIR/check.ts + tsconfig.json for step 2; run.sh runs tsc on them.
import fs from "node:fs";
import path from "node:path";

const [outDir, ...inputs] = process.argv.slice(2);
if (!outDir || inputs.length === 0) {
  console.error("usage: node validate-manifests.mjs OUT_DIR NAME=FILE.json...");
  process.exit(2);
}

// apiVersion + kind -> module exporting the model class.
function modulePath(apiVersion, kind) {
  if (apiVersion === "serving.knative.dev/v1") {
    return `@kubernetes-models/knative/serving.knative.dev/v1/${kind}`;
  }
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

let failures = 0;
let checked = 0;
const tsImports = new Map();
const tsLines = [];
for (const input of inputs) {
  const [name, file] = input.split("=");
  const objects = JSON.parse(fs.readFileSync(file, "utf8"));
  for (const [i, obj] of objects.entries()) {
    const label = `${name}: ${obj.kind}/${obj.metadata?.name ?? "?"}`;
    const mod = modulePath(obj.apiVersion, obj.kind);
    let Model;
    try {
      Model = (await import(mod))[obj.kind];
    } catch (e) {
      console.log(`FAIL ${label}: no schema for ${obj.apiVersion} ${obj.kind} (${e.code ?? e.message})`);
      failures++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`ok   ${label} (${obj.apiVersion}) schema`);
    } catch (e) {
      console.log(`FAIL ${label}: ${e.message}`);
      failures++;
    }
    checked++;
    const alias = `${obj.kind}_${tsImports.size}`;
    if (!tsImports.has(mod)) tsImports.set(mod, alias);
    // The constructors take the object without its TypeMeta (they set apiVersion and kind).
    const { apiVersion: _a, kind: _k, ...body } = obj;
    tsLines.push(`// ${label}\nexport const o_${name.replace(/\W/g, "_")}_${i} = new ${tsImports.get(mod)}(${JSON.stringify(body, null, 1)});`);
  }
}

fs.mkdirSync(outDir, { recursive: true });
const header = [...tsImports].map(([mod, alias]) => {
  const kind = alias.replace(/_\d+$/, "");
  return `import { ${kind} as ${alias} } from "${mod}";`;
});
fs.writeFileSync(path.join(outDir, "check.ts"), [...header, "", ...tsLines, ""].join("\n"));
fs.writeFileSync(
  path.join(outDir, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext",
      target: "es2022", skipLibCheck: true, types: [],
    },
    files: ["check.ts"],
  }, null, 1),
);
console.log(`${checked} objects checked against the OpenAPI schemas, ${failures} failed`);
process.exit(failures ? 1 : 0);
