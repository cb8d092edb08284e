// hubbub's service worker: shows a Web Push notification (the payload is
// decrypted by the browser; fields per protocol.md "Push notifications")
// and focuses or opens the app when it is clicked. Nothing else.
'use strict';

function notificationFor(p) {
  const title = p.from ? p.from : 'hubbub';
  let body = p.text ? p.text : 'New message';
  if (p.count > 1) body += ` (+${p.count - 1} more)`;
  return { title, options: { body, tag: `conv-${p.conversation}`, data: { conversation: p.conversation } } };
}

self.addEventListener('push', (event) => {
  let payload = {};
  try { payload = event.data ? event.data.json() : {}; } catch { payload = {}; }
  const n = notificationFor(payload);
  event.waitUntil(self.registration.showNotification(n.title, n.options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    if (wins.length > 0) return wins[0].focus();
    return self.clients.openWindow('/');
  })());
});
