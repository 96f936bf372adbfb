/**
 * Text clean-up against its Python originals. The expected strings are not produced by vitkit:
 * HTML_CASES are Python 3.11's html.unescape outputs (computed once with CPython and pasted here);
 * the ftfy cases are ftfy 6.3's own assertions (tests/test_entities.py and docstrings of ftfy/fixes.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { htmlUnescape, ftfyUnescapeHtml, fixText, basicClean, whitespaceClean, cleanLower, cleanHf } from '../../src/text/clean.js';

const HTML_CASES: Array<[string, string]> = [["&amp;", "&"], ["&amp", "&"], ["&ampx", "&x"], ["&notit;", "\u00acit;"], ["&notin;", "\u2209"], ["&not it", "\u00ac it"], ["&#65;", "A"], ["&#x41;", "A"], ["&#X41", "A"], ["&#0;", "\ufffd"], ["&#128;", "\u20ac"], ["&#x80;&#x9d;", "\u20ac\u009d"], ["&#xD800;", "\ufffd"], ["&#1114112;", "\ufffd"], ["&#99999999999999999999;", "\ufffd"], ["&#1;", ""], ["&#xfffe;", ""], ["&#65", "A"], ["&bogus;", "&bogus;"], ["&AElig", "\u00c6"], ["&AEligx", "\u00c6x"], ["&Aacute;&aacute", "\u00c1\u00e1"], ["a & b", "a & b"], ["&&amp;", "&&"], ["&#;", "&#;"], ["&#x;", "&#x;"], ["&lt;&gt;&quot;&apos;", "<>\"'"], ["&NotNestedGreaterGreater;", "\u2aa2\u0338"], ["&fjlig;", "fj"], ["&#0065;", "A"], ["&#x0000041;", "A"], ["&#x00000041;", "A"]];

test('htmlUnescape equals Python html.unescape (named, legacy prefix, numeric, invalid references)', () => {
  for (const [inp, want] of HTML_CASES) assert.equal(htmlUnescape(inp), want, JSON.stringify(inp));
  assert.equal(htmlUnescape('no entity'), 'no entity');
  assert.equal(htmlUnescape('&constructor;'), '&constructor;'); // not an Object.prototype lookup
});

test('ftfy unescape_html and fix_text on ftfy 6.3 test_entities.py cases', () => {
  assert.equal(fixText('&amp;\n<html>\n&amp;'), '&\n<html>\n&amp;'); // "auto": off from the first line with "<"
  assert.equal(fixText('&lt;&gt;'), '<>');
  assert.equal(fixText('jednocze&sacute;nie'), 'jednocześnie');
  assert.equal(fixText('JEDNOCZE&Sacute;NIE'), 'JEDNOCZEŚNIE');
  assert.equal(fixText('broken&#x81;'), 'broken\x81');
  assert.equal(fixText('&amp;amp;amp;'), '&');
  assert.equal(ftfyUnescapeHtml('euro &#x80;'), 'euro €');
  assert.equal(ftfyUnescapeHtml('EURO &EURO;'), 'EURO €');
  assert.equal(ftfyUnescapeHtml('not an entity &#20x6;'), 'not an entity &#20x6;');
  assert.equal(ftfyUnescapeHtml('JEDNOCZE&SACUTE;NIE'), 'JEDNOCZEŚNIE');
  assert.equal(ftfyUnescapeHtml('V&SCARON;ICHNI'), 'VŠICHNI');
  assert.equal(ftfyUnescapeHtml('&#xffff;'), '');
  assert.equal(ftfyUnescapeHtml('&#xffffffff;'), '\ufffd');
  assert.equal(fixText('this is just informal english &not html'), 'this is just informal english &not html');
  assert.equal(ftfyUnescapeHtml('P&EACUTE;REZ'), 'PÉREZ');
  assert.equal(ftfyUnescapeHtml('BUNDESSTRA&SZLIG;E'), 'BUNDESSTRASSE');
  assert.equal(ftfyUnescapeHtml('&ntilde; &Ntilde; &NTILDE; &nTILDE;'), 'ñ Ñ Ñ &nTILDE;');
});

test('ftfy fixers from its docstrings: width, ligatures, quotes, line breaks, escapes, surrogates, controls', () => {
  assert.equal(fixText('ＬＯＵＤ　ＮＯＩＳＥＳ'), 'LOUD NOISES');
  assert.equal(fixText('Ｕﾀｰﾝ'), 'Uターン');
  assert.equal(fixText('ﬂuﬃeﬆ'), 'fluffiest');
  assert.equal(fixText('\u201chere\u2019s a test\u201d'), '"here\'s a test"');
  assert.equal(fixText('This string is made of two things:\u2029' + '1. Unicode\u2028' + '2. Spite'), 'This string is made of two things:\n1. Unicode\n2. Spite');
  assert.equal(fixText('Content-type: text/plain\r\n\r\nHi.'), 'Content-type: text/plain\n\nHi.');
  assert.equal(fixText("\x1b[36;44mI'm blue, da ba dee da ba doo...\x1b[0m"), "I'm blue, da ba dee da ba doo...");
  assert.equal(fixText('\udca9\ud83d'), '\ufffd\ufffd');
  assert.equal(fixText('\ud83d\udca9'), '\u{1f4a9}');
  assert.equal(fixText('a\x00b\ufeffc\u206ad'), 'abcd');
  assert.equal(fixText('tab\tstays'), 'tab\tstays');
});

test('open_clip clean: basic_clean strips, whitespace_clean collapses Unicode White_Space, lower', () => {
  assert.equal(basicClean('  x &amp;amp; y \n'), 'x & y');
  assert.equal(whitespaceClean(' a \u00a0\u2003 b\u0085c '), 'a b c'); // Python regex \s includes U+0085
  assert.equal(whitespaceClean('a\ufeffb'), 'a\ufeffb'); // and not U+FEFF (JS \s would)
  assert.equal(cleanLower(' A  Photo\tOF a CAT. '), 'a photo of a cat.');
  assert.equal(cleanHf(' A &amp;  B '), ' a &amp; b ');
});
