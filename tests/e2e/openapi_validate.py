#!/usr/bin/python3
"""Checks HTTP responses (and the README's example responses) against pysandbox's OpenAPI
document, with Debian's python3-jsonschema (JSON Schema 2020-12, the dialect of OpenAPI 3.1).

  openapi_validate.py --doc openapi.json [--responses seen.jsonl] [--readme README.md]
                      [--require-errors] [--allow-missing TYPE:STATUS ...]

--responses: one JSON object a line, {"method", "target", "status", "content_type", "body"}.
Each is matched to its path and operation (an unknown path must be the document's NotFound, a
method the path lacks its MethodNotAllowed), then to the response of its status (or "default"),
its media type must be one the document lists, and a JSON body must validate against the schema.
An error body's (error_type, status) must be in the document's x-error-catalog.
--require-errors: every catalogue entry must have been seen (except --allow-missing ones).
Exit status 0 when everything holds, 1 otherwise (each problem on its own line), 2 for usage.
"""
import argparse
import json
import re
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator, RefResolver
except ImportError:  # pragma: no cover - reported, not hidden
    print("SKIP: python3-jsonschema is not installed", file=sys.stderr)
    sys.exit(77)


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.resolver = RefResolver.from_schema(doc)
        self.problems = []
        self.seen_errors = set()
        self.checked = 0
        self.catalog = {(e["error_type"], e["status"]) for e in doc.get("x-error-catalog", [])}
        self.templates = []
        for path in doc["paths"]:
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"
            self.templates.append((path, re.compile(pattern)))

    def fail(self, where, message):
        self.problems.append("%s: %s" % (where, message))

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            _, node = self.resolver.resolve(node["$ref"])
        return node

    def check_document(self):
        doc = self.doc
        if doc.get("openapi", "")[:4] != "3.1.":
            self.fail("document", "openapi is %r, not 3.1.x" % doc.get("openapi"))
        for key in ("title", "version"):
            if not doc.get("info", {}).get(key):
                self.fail("document", "info.%s missing" % key)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            try:
                Draft202012Validator.check_schema(schema)
            except jsonschema.exceptions.SchemaError as e:
                self.fail("components.schemas." + name, "not a valid schema: %s" % e.message)
        # Every reference must resolve.
        def walk(node, where):
            if isinstance(node, dict):
                if "$ref" in node:
                    try:
                        self.resolver.resolve(node["$ref"])
                    except jsonschema.exceptions.RefResolutionError as e:
                        self.fail(where, "unresolvable $ref %s (%s)" % (node["$ref"], e))
                for k, v in node.items():
                    walk(v, where + "." + k)
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, "%s[%d]" % (where, i))
        walk(doc, "document")
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if method in ("get", "post", "put", "delete", "patch", "head", "options"):
                    if not op.get("responses"):
                        self.fail("%s %s" % (method.upper(), path), "no responses")
        if not self.catalog:
            self.fail("document", "x-error-catalog is empty")

    def validate(self, where, instance, schema):
        validator = Draft202012Validator(schema, resolver=self.resolver)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        for error in errors[:5]:
            at = "/".join(str(p) for p in error.absolute_path) or "(body)"
            self.fail(where, "%s: %s" % (at, error.message[:300]))
        return not errors

    def find_response(self, method, path, status):
        """(response object, description) for a request, or (None, reason)."""
        item = self.doc["paths"].get(path)
        if item is None:
            for template, pattern in self.templates:
                if pattern.match(path):
                    item = self.doc["paths"][template]
                    break
        responses_components = self.doc["components"]["responses"]
        if item is None:
            if status != 404:
                return None, "path is not in the document, yet the status is %d, not 404" % status
            return responses_components["NotFound"], "NotFound"
        op = item.get("head" if method == "head" and "head" in item else
                      ("get" if method == "head" else method))
        if op is None:
            if status != 405:
                return None, "method not in the document, yet the status is %d, not 405" % status
            return responses_components["MethodNotAllowed"], "MethodNotAllowed"
        responses = op["responses"]
        response = responses.get(str(status), responses.get("default"))
        if response is None:
            return None, "status %d is not documented for %s %s" % (status, method.upper(), path)
        return self.deref(response), "responses.%s" % status

    def check_response(self, record, where):
        self.checked += 1
        method = record["method"].lower()
        path = record["target"].split("?", 1)[0]
        status = int(record["status"])
        where = "%s: %s %s -> %d" % (where, record["method"], record["target"][:80], status)
        response, how = self.find_response(method, path, status)
        if response is None:
            self.fail(where, how)
            return
        content = response.get("content", {})
        media = (record.get("content_type") or "").split(";")[0].strip().lower()
        if not content:
            return
        if media not in content:
            self.fail(where, "Content-Type %r is not one of %s (%s)" % (media, sorted(content), how))
            return
        body = record.get("body", "")
        if method == "head" or media != "application/json":
            return
        try:
            instance = json.loads(body)
        except ValueError as e:
            self.fail(where, "body is not JSON: %s" % e)
            return
        schema = content[media].get("schema", {})
        self.validate(where, instance, schema)
        if isinstance(instance, dict) and "error_type" in instance and status >= 400:
            pair = (instance["error_type"], status)
            self.seen_errors.add(pair)
            if pair not in self.catalog:
                self.fail(where, "(%s, %d) is not in x-error-catalog" % pair)

    def check_readme(self, readme_path):
        """The README's ```json blocks that follow a ```sh curl block: /execute responses."""
        with open(readme_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        examples, fence, block, pending, start = [], None, [], None, 0
        for n, line in enumerate(lines, 1):
            if fence is None:
                if line.startswith("```"):
                    fence, block, start = line[3:], [], n
                elif line.strip() and pending:
                    pending = None
                continue
            if not line.startswith("```"):
                block.append(line)
                continue
            text = "\n".join(block)
            if fence == "sh" and text.startswith("curl "):
                pending = (start, text)
            elif fence == "json" and pending:
                examples.append((start, pending[1], text))
                pending = None
            else:
                pending = None
            fence = None
        if not examples:
            self.fail(readme_path, "no example responses found")
        op = self.doc["paths"]["/execute"]["post"]
        for line, command, text in examples:
            where = "%s:%d" % (readme_path, line)
            self.checked += 1
            try:
                instance = json.loads(text)
            except ValueError as e:
                self.fail(where, "not JSON: %s" % e)
                continue
            if "/execute" not in command:
                self.fail(where, "example is not an /execute call")
                continue
            if isinstance(instance, dict) and "error_type" in instance:
                statuses = sorted(s for t, s in self.catalog if t == instance["error_type"])
                if not statuses:
                    self.fail(where, "error_type %r is not in x-error-catalog" % instance["error_type"])
                    continue
            else:
                statuses = [200]
            # An example shows no status: it must fit the response of one status its body allows.
            ok = False
            for status in statuses:
                response = self.deref(op["responses"].get(str(status), op["responses"]["default"]))
                schema = response["content"]["application/json"]["schema"]
                validator = Draft202012Validator(schema, resolver=self.resolver)
                if validator.is_valid(instance):
                    ok = True
                    break
            if not ok:
                response = self.deref(op["responses"].get(str(statuses[0]), op["responses"]["default"]))
                self.validate(where, instance, response["content"]["application/json"]["schema"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--doc", required=True)
    parser.add_argument("--responses")
    parser.add_argument("--readme")
    parser.add_argument("--require-errors", action="store_true")
    parser.add_argument("--allow-missing", nargs="*", default=[])
    args = parser.parse_args()

    with open(args.doc, encoding="utf-8") as f:
        checker = Checker(json.load(f))
    checker.check_document()
    if args.responses:
        with open(args.responses, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    checker.check_response(json.loads(line), "%s:%d" % (args.responses, n))
    if args.readme:
        checker.check_readme(args.readme)
    if args.require_errors:
        allowed = set()
        for item in args.allow_missing:
            error_type, _, status = item.partition(":")
            allowed.add((error_type, int(status)))
        for pair in sorted(checker.catalog - checker.seen_errors - allowed):
            checker.fail("coverage", "never saw error_type %s with status %d" % pair)
    for problem in checker.problems:
        print("FAIL: " + problem)
    print("openapi: %d responses/examples checked, %d error kinds seen, %d problems"
          % (checker.checked, len(checker.seen_errors), len(checker.problems)))
    return 1 if checker.problems else 0


if __name__ == "__main__":
    sys.exit(main())
