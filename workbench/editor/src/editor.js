// The admin's content editor. It enhances a <textarea data-editor> (the textarea stays the
// form's field: every change is written back to it):
//   - HTML bodies: a rich-text editor (TipTap / ProseMirror) or the HTML code (CodeMirror);
//   - Markdown, plain text and layouts: a code editor with highlighting (CodeMirror);
//   - variables offered from a menu, images picked from the media library or uploaded;
//   - a live preview beside it (the server renders the draft: data-preview-url);
//   - switching the campaign's format converts the body, and says first what would be lost.
// No inline script and no eval: the page's Content-Security-Policy stays strict.
import {Editor} from "@tiptap/core";
import StarterKit from "@tiptap/starter-kit";
import Link from "@tiptap/extension-link";
import Image from "@tiptap/extension-image";
import TextAlign from "@tiptap/extension-text-align";
import {EditorView, basicSetup} from "codemirror";
import {html as htmlLanguage} from "@codemirror/lang-html";
import {markdown as markdownLanguage} from "@codemirror/lang-markdown";

// The interface's words in the user's language, from the page (editor_assets.html).
const LABELS = (() => {
  const source = document.getElementById("editor-labels");
  return source ? JSON.parse(source.textContent) : {};
})();
const t = (text) => LABELS[text] || text;

const csrf = () => (document.querySelector("[name=csrfmiddlewaretoken]") || {}).value || "";

async function post(url, fields) {
  const body = new FormData();
  Object.entries(fields).forEach(([key, value]) => body.append(key, value));
  const response = await fetch(url, {method: "POST", body, credentials: "same-origin",
                                     headers: {"X-CSRFToken": csrf()}});
  const data = await response.json().catch(() => ({error: `The server answered ${response.status}.`}));
  if (!response.ok && !data.error) data.error = `The server answered ${response.status}.`;
  return data;
}

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  Object.entries(attributes).forEach(([key, value]) => {
    if (key === "text") node.textContent = value; else node.setAttribute(key, value);
  });
  children.forEach((child) => node.appendChild(child));
  return node;
}

function jsonFrom(id, fallback) {
  const source = id && document.getElementById(id);
  return source ? JSON.parse(source.textContent) : fallback;
}

// Rich text keeps what ProseMirror's schema knows; compare to see whether HTML survives it.
const normal = (html) => html.replace(/\s+/g, " ").replace(/> </g, "><").replace(/ ?\/>/g, ">").trim();

class ContentEditor {
  constructor(textarea) {
    this.textarea = textarea;
    this.kind = textarea.dataset.editor; // "body" or "layout"
    this.formatField = document.getElementById(textarea.dataset.formatField || "");
    this.variables = jsonFrom(textarea.dataset.variables, []);
    this.mode = null;
    this.rich = null;
    this.code = null;
    this.build();
    this.start(this.preferredMode());
    if (this.formatField) {
      this.lastFormat = this.formatField.value;
      this.formatField.addEventListener("change", () => this.formatChanged());
    }
  }

  format() { return this.kind === "layout" ? "html" : (this.formatField ? this.formatField.value : "html"); }

  preferredMode() {
    if (this.format() !== "html" || this.kind === "layout") return "code";
    return this.fitsRichText(this.textarea.value) ? "rich" : "code";
  }

  fitsRichText(html) {
    if (!html.trim()) return true;
    if (/\{%|<table|<style|<head|<html|style=/i.test(html)) return false;
    const probe = new Editor({extensions: this.extensions(), content: html});
    const kept = probe.getHTML();
    probe.destroy();
    return normal(kept) === normal(html);
  }

  extensions() {
    return [StarterKit, Link.configure({openOnClick: false, autolink: false}),
            Image.configure({inline: false}), TextAlign.configure({types: ["heading", "paragraph"]})];
  }

  build() {
    const box = element("div", {class: "wb-editor"});
    this.toolbar = element("div", {class: "wb-toolbar", role: "toolbar"});
    this.surface = element("div", {class: "wb-surface"});
    this.status = element("p", {class: "wb-editor-status", "aria-live": "polite"});
    const main = element("div", {class: "wb-editor-main"}, [this.toolbar, this.surface, this.status]);
    box.appendChild(main);
    if (this.textarea.dataset.previewUrl) {
      this.frame = element("iframe", {class: "wb-preview-frame", sandbox: "", title: t("Preview"),
                                      referrerpolicy: "no-referrer"});
      this.previewSubject = element("p", {class: "wb-preview-subject"});
      this.previewError = element("p", {class: "wb-preview-error", role: "alert"});
      box.appendChild(element("div", {class: "wb-preview"}, [
        element("h3", {text: t("Preview")}), this.previewSubject, this.previewError, this.frame]));
    }
    this.textarea.insertAdjacentElement("afterend", box);
    this.textarea.classList.add("wb-hidden-source");
  }

  buttons() {
    this.toolbar.replaceChildren();
    const add = (label, title, action, pressed) => {
      const button = element("button", {type: "button", class: "wb-tool", title, "aria-label": title, text: label});
      if (pressed !== undefined) button.setAttribute("aria-pressed", String(pressed));
      // The editor keeps the focus (and the selection) while a tool is used.
      button.addEventListener("mousedown", (event) => event.preventDefault());
      button.addEventListener("click", (event) => { event.preventDefault(); action(); });
      this.toolbar.appendChild(button);
      return button;
    };
    if (this.format() === "html" && this.kind === "body") {
      add(t("Rich text"), t("Edit as rich text"), () => this.switchMode("rich"), this.mode === "rich");
      add("HTML", t("Edit the HTML code"), () => this.switchMode("code"), this.mode === "code");
      this.toolbar.appendChild(element("span", {class: "wb-tool-gap"}));
    }
    if (this.mode === "rich") {
      const chain = () => this.rich.chain().focus();
      add("B", t("Bold"), () => chain().toggleBold().run());
      add("I", t("Italic"), () => chain().toggleItalic().run());
      add("H2", t("Heading"), () => chain().toggleHeading({level: 2}).run());
      add("H3", t("Subheading"), () => chain().toggleHeading({level: 3}).run());
      add("• List", t("Bulleted list"), () => chain().toggleBulletList().run());
      add("1. List", t("Numbered list"), () => chain().toggleOrderedList().run());
      add("❝", t("Quote"), () => chain().toggleBlockquote().run());
      add(t("Link"), t("Link the selected text"), () => {
        const url = window.prompt(t("Address of the link (https://…, or a variable such as {{ unsubscribe_url }})"),
                                  this.rich.getAttributes("link").href || "https://");
        if (url === null) return;
        if (url === "") chain().unsetLink().run(); else chain().extendMarkRange("link").setLink({href: url}).run();
      });
      add("↶", t("Undo"), () => chain().undo().run());
      add("↷", t("Redo"), () => chain().redo().run());
    }
    if (this.kind === "body" && this.textarea.dataset.libraryUrl) {
      add(t("Image"), t("Insert an image from the media library"), () => this.pickImage());
    }
    if (this.variables.length) {
      const menu = element("select", {class: "wb-variables", "aria-label": "Insert a variable"});
      menu.appendChild(element("option", {value: "", text: t("Insert a variable…")}));
      this.variables.forEach((v) => menu.appendChild(element("option", {value: v.tag, text: `${v.label}  ${v.tag}`})));
      menu.addEventListener("change", () => {
        if (menu.value) this.insertText(menu.value);
        menu.value = "";
      });
      this.toolbar.appendChild(menu);
    }
  }

  start(mode) {
    this.mode = mode;
    this.surface.replaceChildren();
    if (this.rich) { this.rich.destroy(); this.rich = null; }
    if (this.code) { this.code.destroy(); this.code = null; }
    if (mode === "rich") {
      this.rich = new Editor({
        element: this.surface,
        extensions: this.extensions(),
        content: this.textarea.value,
        editorProps: {attributes: {class: "wb-rich", "aria-label": t("Body"), role: "textbox", "aria-multiline": "true"}},
        onUpdate: ({editor}) => this.changed(editor.getHTML()),
      });
    } else {
      const format = this.format();
      const language = format === "markdown" ? [markdownLanguage()] : format === "html" ? [htmlLanguage()] : [];
      this.code = new EditorView({
        doc: this.textarea.value,
        parent: this.surface,
        extensions: [basicSetup, EditorView.lineWrapping, ...language,
                     EditorView.updateListener.of((update) => { if (update.docChanged) this.changed(update.state.doc.toString()); })],
      });
      this.code.contentDOM.setAttribute("aria-label", this.kind === "layout" ? t("Layout HTML") : t("Body"));
    }
    this.surface.dataset.mode = mode;
    this.buttons();
    this.schedulePreview();
  }

  changed(value) {
    this.textarea.value = value;
    this.textarea.dispatchEvent(new Event("input", {bubbles: true}));
    this.schedulePreview();
  }

  // The whole content replaced, as if typed (the mode is chosen for it again).
  setValue(text) {
    this.textarea.value = text;
    this.start(this.preferredMode());
  }

  insertText(text) {
    if (this.rich) this.rich.chain().focus().insertContent(text).run();
    else this.code.dispatch(this.code.state.replaceSelection(text));
  }

  insertImage(image) {
    const alt = image.alt || image.name;
    if (this.rich) { this.rich.chain().focus().setImage({src: image.url, alt}).run(); return; }
    const format = this.format();
    if (format === "markdown") this.insertText(`![${alt}](${image.url})`);
    else if (format === "html") this.insertText(`<img src="${image.url}" alt="${alt.replace(/"/g, "&quot;")}" width="${Math.min(image.width || 600, 600)}">`);
    else this.insertText(image.url);
  }

  switchMode(mode) {
    if (mode === this.mode) return;
    if (mode === "rich" && !this.fitsRichText(this.textarea.value) &&
        !window.confirm(t("Rich text cannot keep all of this HTML: tables, styles, layout blocks and " +
                          "template tags between elements would be simplified or lost. Switch anyway?"))) {
      return;
    }
    this.start(mode);
  }

  async formatChanged() {
    const from = this.lastFormat, to = this.formatField.value;
    if (from === to) return;
    const url = this.textarea.dataset.convertUrl;
    if (url && this.textarea.value.trim()) {
      const result = await post(url, {body: this.textarea.value, from, to});
      if (result.error) { window.alert(result.error); this.formatField.value = from; return; }
      if (result.lost.length && !window.confirm(
          t("Switching from %(from)s to %(to)s would lose: %(lost)s. Switch anyway?")
            .replace("%(from)s", from).replace("%(to)s", to).replace("%(lost)s", result.lost.join("; ")))) {
        this.formatField.value = from;
        return;
      }
      this.textarea.value = result.body;
      this.status.textContent = result.lost.length
        ? t("Converted; lost: %(lost)s.").replace("%(lost)s", result.lost.join("; "))
        : t("Converted to %(format)s.").replace("%(format)s", to);
    }
    this.lastFormat = to;
    this.start(this.preferredMode());
  }

  schedulePreview() {
    if (!this.frame) return;
    clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => this.preview(), 400);
  }

  async preview() {
    const form = this.textarea.form;
    const field = (name) => (form.querySelector(`[name=${name}]`) || {}).value || "";
    const result = await post(this.textarea.dataset.previewUrl, {
      body: this.textarea.value, format: this.format(), subject: field("subject"), template: field("template"),
      kind: field("kind"),
    });
    this.previewError.textContent = result.error || "";
    if (result.error) return;
    this.previewSubject.textContent = result.subject;
    this.frame.srcdoc = "<style>img{max-width:100%;height:auto}body{margin:8px}</style>" + result.html;
  }

  async pickImage() {
    const dialog = element("dialog", {class: "wb-picker", "aria-label": t("Media library")});
    const grid = element("div", {class: "wb-picker-grid"});
    const file = element("input", {type: "file", accept: "image/png,image/jpeg,image/gif,image/webp",
                                   "aria-label": t("Upload an image")});
    const problem = element("p", {class: "wb-preview-error", role: "alert"});
    const close = element("button", {type: "button", class: "button", text: t("Close")});
    dialog.append(element("h3", {text: t("Choose an image, or upload one")}), file, problem, grid, close);
    document.body.appendChild(dialog);
    const choose = (image) => { dialog.close(); dialog.remove(); this.insertImage(image); };
    close.addEventListener("click", () => { dialog.close(); dialog.remove(); });
    file.addEventListener("change", async () => {
      if (!file.files.length) return;
      const result = await post(this.textarea.dataset.uploadUrl, {file: file.files[0], alt: ""});
      if (result.error) { problem.textContent = result.error; return; }
      choose(result.data);
    });
    dialog.showModal();
    const response = await fetch(`${this.textarea.dataset.libraryUrl}?kind=image`, {credentials: "same-origin"});
    const found = response.ok ? (await response.json()).data : [];
    if (!found.length) grid.appendChild(element("p", {text: t("The library has no images yet.")}));
    found.forEach((image) => {
      const pick = element("button", {type: "button", class: "wb-picker-item", title: image.name},
                           [element("img", {src: image.thumbnail || image.url, alt: image.alt || image.name}),
                            element("span", {text: image.name})]);
      pick.addEventListener("click", () => choose(image));
      grid.appendChild(pick);
    });
  }
}

function enhance() {
  document.querySelectorAll("textarea[data-editor]").forEach((textarea) => {
    if (!textarea.dataset.enhanced) { textarea.dataset.enhanced = "1"; textarea.contentEditor = new ContentEditor(textarea); }
  });
}
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", enhance); else enhance();
