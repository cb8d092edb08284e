// Every request kind of protocol.md section 4, and the method name the
// client gives it (camelCase of the kind). The auth kinds and message.send
// have their own methods on HubbubClient (session handling, the outbox).

/** Request kinds, in protocol.md order. */
export const KINDS = Object.freeze([
  'auth.register', 'auth.login', 'auth.token', 'auth.refresh', 'auth.logout',
  'message.send', 'message.edit', 'message.delete', 'message.history', 'message.sync',
  'conversation.list',
  'group.create', 'group.get', 'group.update', 'group.members', 'group.add', 'group.remove',
  'group.leave', 'group.role',
  'conversation.read', 'change.sync', 'message.react', 'message.unreact',
  'settings.get', 'settings.update',
  'push.config', 'device.register', 'device.list', 'device.remove',
  'typing.start', 'typing.stop',
  'user.block', 'user.unblock', 'user.blocks', 'conversation.mute', 'conversation.unmute',
  'report.create',
  'presence.query', 'presence.watch', 'presence.unwatch', 'ping',
  'profile.get', 'profile.update', 'user.search',
  'follow.add', 'follow.remove', 'follow.followers', 'follow.following',
  'account.password', 'account.delete',
  'post.create', 'post.get', 'post.delete', 'post.like', 'post.unlike', 'post.repost',
  'post.unrepost', 'timeline.home', 'timeline.user',
]);

/** `message.send` -> `messageSend`. */
export function methodName(kind) {
  return kind.replace(/[._]([a-z])/g, (_, c) => c.toUpperCase());
}

/** Kinds that have a dedicated method instead of the generated one. */
export const SPECIAL = new Set(['auth.register', 'auth.login', 'auth.token', 'auth.refresh',
  'auth.logout', 'message.send']);
