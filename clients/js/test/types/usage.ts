// Compiled with `tsc --noEmit` by types.test.js: the .d.ts describes the API.
import { HubbubClient, HubbubError, type Message, type Session } from '../../src/index.js';

let saved: Session | null = null;
const c = new HubbubClient({
  url: 'ws://127.0.0.1:8080/ws',
  sessionStore: { load: () => saved, save: (s) => { saved = s; } },
  initialCursor: () => '0',
});
c.on('message', (m: Message, info) => { const s: 'event' | 'sync' | 'sent' = info.source; void m.conversation_id; void s; });
c.on('message.reactions', (d, f) => { void d.reactions[0].count; void f.pos?.offset; });
c.on('session_ended', ({ code }) => { void (code + 1); });
async function main(): Promise<void> {
  await c.login({ username: 'alice', password: 'correct horse' });
  const m: Message = await c.sendMessage({ to: 'bob', text: 'hi' });
  const h = await c.messageHistory({ with: 'bob', before: m.id });
  const next: string | null = h.next_before; void next;
  const g = await c.request('group.create', { title: 'Trip', members: ['bob'] });
  void g.group.conversation_id;
  try { await c.profileGet({ username: 'nobody' }); } catch (e) { if (e instanceof HubbubError) void e.code; }
}
void main;
