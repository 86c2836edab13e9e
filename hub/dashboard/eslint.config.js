// ESLint for the dashboard's ES modules (run by tests/hub/dashboard/test_lint.py):
//   cd hub/dashboard && node_modules/.bin/eslint --max-warnings 0 js field
// The recommended rules, plus a ban on every API that parses a string as markup: pages are
// built with the element helpers in js/dom.js (h, svg, fill), so no value a device or a user
// sets can become an element or a script.
import js from "@eslint/js";
import globals from "globals";

const MARKUP = "builds markup from a string: build nodes with h()/svg()/fill() from js/dom.js";

export default [
  { ignores: ["node_modules/**"] },
  // The field page's service worker runs in a worker's global scope, not a page's.
  { files: ["field/sw.js"], languageOptions: { globals: { ...globals.serviceworker } } },
  js.configs.recommended,
  {
    files: ["js/**/*.js", "field/**/*.js", "eslint.config.js"],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: MARKUP },
        { property: "outerHTML", message: MARKUP },
        { property: "insertAdjacentHTML", message: MARKUP },
        { object: "document", property: "write", message: MARKUP },
        { object: "document", property: "writeln", message: MARKUP },
        { property: "createContextualFragment", message: MARKUP },
        { property: "setHTMLUnsafe", message: MARKUP },
        { property: "parseHTMLUnsafe", message: MARKUP },
      ],
      "no-restricted-syntax": [
        "error",
        // Assignments and computed access (el["innerHTML"] = ...) that the property rule misses.
        {
          selector: "MemberExpression[computed=true][property.value=/^(innerHTML|outerHTML|insertAdjacentHTML|srcdoc)$/]",
          message: MARKUP,
        },
        { selector: "Property[key.name='innerHTML'], Property[key.value='innerHTML']", message: MARKUP },
        { selector: "NewExpression[callee.name='DOMParser']", message: MARKUP },
        // Leaflet parses a string given as an icon's html or a tooltip's / popup's content:
        // give it an element instead.
        {
          selector: "Property[key.name='html'][value.type=/^(Literal|TemplateLiteral|BinaryExpression)$/]",
          message: `Leaflet ${MARKUP}`,
        },
        {
          selector: "CallExpression[callee.property.name=/^(bindTooltip|bindPopup|setTooltipContent|setPopupContent|setContent)$/][arguments.0.type=/^(Literal|TemplateLiteral|BinaryExpression)$/]",
          message: `Leaflet ${MARKUP}`,
        },
        // A tile source's attribution is the one HTML string Leaflet needs: always escaped.
        {
          selector: "Property[key.name='attribution'][value.callee.name!='escapeHtml']",
          message: "Leaflet renders attribution as HTML: pass escapeHtml(value) from js/dom.js",
        },
        { selector: "CallExpression[callee.name=/^(eval|Function)$/]", message: "no code from strings" },
        { selector: "NewExpression[callee.name='Function']", message: "no code from strings" },
        // No globals for tests to reach into: tests use the page as a user does.
        {
          selector: "AssignmentExpression[left.object.name='window'][left.property.name=/^__/]",
          message: "no test hooks on window: tests use the page as a user does",
        },
      ],
      "no-implied-eval": "error",
      "no-script-url": "error",
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
];
