import { Resvg } from '@resvg/resvg-js';

/** The SVG rendered to PNG by resvg (a Rust renderer; system fonts for the text). */
export function renderPng(svg: string): Buffer {
  return new Resvg(svg, { fitTo: { mode: 'original' }, background: '#ffffff' }).render().asPng();
}
