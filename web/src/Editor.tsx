// The script editor: CodeMirror 6 with Python highlighting, line numbers, auto-indentation,
// bracket matching and closing, undo history; Ctrl/Cmd+Enter runs. The line of the last error
// is highlighted until the script is edited or run again.
import { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab, isolateHistory } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import {
  bracketMatching,
  foldGutter,
  HighlightStyle,
  foldKeymap,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from "@codemirror/language";
import { tags } from "@lezer/highlight";
import { EditorState, Prec, StateEffect, StateField } from "@codemirror/state";
import {
  Decoration,
  type DecorationSet,
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import { forwardRef, useEffect, useImperativeHandle, useRef } from "react";

// Colours come from CSS variables, so the page's light and dark schemes (and their contrast
// checks) apply to the code too.
const highlightStyle = HighlightStyle.define([
  { tag: [tags.keyword, tags.controlKeyword, tags.definitionKeyword, tags.moduleKeyword, tags.operatorKeyword], color: "var(--hl-keyword)" },
  { tag: [tags.string, tags.special(tags.string)], color: "var(--hl-string)" },
  { tag: [tags.number, tags.bool, tags.null], color: "var(--hl-number)" },
  { tag: tags.comment, color: "var(--hl-comment)", fontStyle: "italic" },
  { tag: [tags.function(tags.definition(tags.variableName)), tags.definition(tags.className)], color: "var(--hl-function)" },
  { tag: [tags.standard(tags.variableName), tags.self], color: "var(--hl-builtin)" },
  { tag: tags.invalid, color: "var(--hl-invalid)" },
]);

// The page's colours (CSS variables inherit into the shadow root) on CodeMirror's parts.
const theme = EditorView.theme({
  "&": {
    flex: "1",
    minWidth: "0",
    minHeight: "18rem",
    fontSize: "14px",
    backgroundColor: "var(--bg)",
    color: "var(--text)",
  },
  "&.cm-focused": { outline: "2px solid var(--focus)", outlineOffset: "-2px" },
  ".cm-scroller": { fontFamily: "var(--mono)", lineHeight: "1.5" },
  ".cm-gutters": {
    backgroundColor: "var(--surface)",
    color: "var(--muted)",
    borderRight: "1px solid var(--border)",
  },
  ".cm-activeLine": { backgroundColor: "color-mix(in srgb, var(--surface-2) 55%, transparent)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--surface-2)" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--text)" },
  "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground":
    { backgroundColor: "color-mix(in srgb, var(--focus) 30%, transparent)" },
  ".cm-matchingBracket, &.cm-focused .cm-matchingBracket": {
    backgroundColor: "color-mix(in srgb, var(--ok) 25%, transparent)",
    outline: "1px solid var(--ok)",
  },
  ".cm-nonmatchingBracket, &.cm-focused .cm-nonmatchingBracket": {
    backgroundColor: "var(--error-bg)",
    outline: "1px solid var(--error)",
  },
  ".cm-error-line": {
    backgroundColor: "var(--error-line)",
    boxShadow: "inset 3px 0 0 var(--error-line-border)",
  },
  ".cm-foldPlaceholder": { backgroundColor: "var(--surface-2)", color: "var(--text)", border: "none" },
});

const setErrorLine = StateEffect.define<number | null>();

const errorLineField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(lines, tr) {
    for (const effect of tr.effects) {
      if (!effect.is(setErrorLine)) continue;
      const n = effect.value;
      if (n === null || n < 1 || n > tr.state.doc.lines) return Decoration.none;
      const line = tr.state.doc.line(n);
      return Decoration.set([
        Decoration.line({ class: "cm-error-line", attributes: { "data-error-line": String(n) } }).range(
          line.from,
        ),
      ]);
    }
    // An edit makes the old position meaningless.
    return tr.docChanged ? Decoration.none : lines;
  },
  provide: (field) => EditorView.decorations.from(field),
});

export interface EditorHandle {
  setDoc(text: string): void;
  getDoc(): string;
  focus(): void;
  showErrorLine(line: number | null): void;
}

interface EditorProps {
  initialDoc: string;
  // An aria-label: ids cannot reach into the shadow root for aria-labelledby.
  label: string;
  onChange(text: string): void;
  onRun(): void;
}

export const Editor = forwardRef<EditorHandle, EditorProps>(function Editor(props, ref) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  // The callbacks change on every render; the editor is built once and calls the latest ones.
  const callbacks = useRef(props);
  callbacks.current = props;

  useEffect(() => {
    const runKeymap = Prec.highest(
      keymap.of([
        {
          key: "Mod-Enter",
          preventDefault: true,
          run: () => {
            callbacks.current.onRun();
            return true;
          },
        },
      ]),
    );
    // CodeMirror injects its styles at run time. Into a document it does so with a <style>
    // element, which the server's Content-Security-Policy (default-src 'self') blocks; into a
    // shadow root it uses a constructed stylesheet, which CSP allows. So it lives in one.
    const element = host.current!;
    const shadow = element.shadowRoot ?? element.attachShadow({ mode: "open" });
    const editor = new EditorView({
      root: shadow,
      parent: shadow,
      state: EditorState.create({
        doc: props.initialDoc,
        extensions: [
          runKeymap,
          lineNumbers(),
          highlightActiveLineGutter(),
          foldGutter(),
          highlightSpecialChars(),
          history(),
          drawSelection(),
          indentOnInput(),
          indentUnit.of("    "),
          bracketMatching(),
          closeBrackets(),
          highlightActiveLine(),
          syntaxHighlighting(highlightStyle),
          python(),
          errorLineField,
          theme,
          keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...foldKeymap, indentWithTab]),
          EditorView.contentAttributes.of({ "aria-label": props.label, "aria-multiline": "true" }),
          EditorView.updateListener.of((update) => {
            if (update.docChanged) callbacks.current.onChange(update.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = editor;
    return () => {
      editor.destroy();
      view.current = null;
    };
    // Built once: initialDoc and the labels are read at mount only.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useImperativeHandle(ref, () => ({
    setDoc(text: string) {
      const v = view.current;
      if (!v) return;
      // One history event of its own: undo brings the previous script back.
      v.dispatch({
        changes: { from: 0, to: v.state.doc.length, insert: text },
        annotations: isolateHistory.of("full"),
      });
    },
    getDoc() {
      return view.current?.state.doc.toString() ?? "";
    },
    focus() {
      view.current?.focus();
    },
    showErrorLine(line: number | null) {
      const v = view.current;
      if (!v) return;
      const effects: StateEffect<unknown>[] = [setErrorLine.of(line)];
      if (line !== null && line >= 1 && line <= v.state.doc.lines) {
        effects.push(EditorView.scrollIntoView(v.state.doc.line(line).from, { y: "center" }));
      }
      v.dispatch({ effects });
    },
  }));

  return <div className="editor" ref={host} />;
});
