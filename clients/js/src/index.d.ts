// Hand-written types for @hubbub/client (plain ES modules, no build step).
// Wire shapes follow protocol.md; ids are decimal strings (63-bit snowflakes).

/** A decimal id string, e.g. "187856615498579968". Never a JSON number. */
export type Id = string;
/** An ISO 8601 UTC timestamp with milliseconds. */
export type Timestamp = string;

/** A place in the user's inbox (protocol.md 5.1). */
export interface Position { epoch: string; offset: number }
export interface User { id: Id; username: string; display_name: string }
export interface Reaction { emoji: string; count: number; me?: boolean }
export interface ReplyPreview { id?: Id; from?: string; preview: string; deleted?: boolean }
export interface Message {
  id: Id; conversation_id: string; kind: 'direct' | 'group';
  from: string; to?: string; text: string; sent_at: Timestamp; nonce?: string;
  edited_at?: Timestamp; deleted?: boolean; reply_to?: ReplyPreview; reactions?: Reaction[];
}
export interface Profile extends User {
  bio: string; color: string | null; avatar_url: string | null; created_at: Timestamp;
  followers: number; following: number;
}
export interface Post {
  id: Id; author: User; text: string; created_at: Timestamp;
  likes: number; reposts: number; liked_by_me: boolean; reposted_by_me: boolean;
}
export interface TimelineItem { id: Id; kind: 'post' | 'repost'; post: Post; reposted_by?: User; at: Timestamp }
export interface Group { conversation_id: Id; title: string; topic: string; owner_id: Id; member_count: number }
export type Role = 'owner' | 'admin' | 'member';
export interface Member { user: User; role: Role; joined_at: Timestamp }
export interface Conversation {
  conversation_id: string; kind: 'direct' | 'group'; with?: User; group?: Group;
  last_message: Message | null; unread: number; unread_capped: boolean; read_up_to: Id | null;
  muted: boolean; muted_until: number | null;
}
export interface Change {
  change_id: Id; kind: 'read' | 'receipt' | 'edit' | 'delete' | 'reaction'; conversation_id: string;
  by: string; message_id: Id; message?: Message; reactions?: Reaction[];
}
export interface Presence { username: string; online: boolean; last_seen: Timestamp | null }
export interface Device { device_id: Id; platform: 'webpush' | 'gateway'; address: string; this_session: boolean; created_at: Timestamp }
export interface Settings { read_receipts: boolean; push_preview: 'full' | 'sender' | 'none' }
export interface MemberChange { conversation_id: Id; user: User; by: User; ended: boolean; group?: Group; new_owner_id?: Id }

/** What the client keeps between runs (persist it with `sessionStore`). */
export interface Session { user: User; access_token: string; refresh_token: string; expires_at: number }
export interface AuthReply { user: User; access_token: string; refresh_token: string; expires_in: number; pos?: Position }
export interface TokenReply { user: User; recovered?: boolean; pos?: Position }

/** Every request kind: [fields, reply data]. */
export interface Requests {
  'auth.register': [{ username: string; password: string; display_name?: string }, AuthReply];
  'auth.login': [{ username: string; password: string }, AuthReply];
  'auth.token': [{ token: string; resume?: Position }, TokenReply];
  'auth.refresh': [{ refresh_token: string }, AuthReply];
  'auth.logout': [Record<string, never>, Record<string, never>];
  'message.send': [{ to?: string; conversation?: string; text: string; nonce?: string; reply_to?: Id }, { message: Message }];
  'message.edit': [{ conversation: string; message_id: Id; text: string }, { message: Message }];
  'message.delete': [{ conversation: string; message_id: Id }, { message: Message }];
  'message.history': [{ with?: string; conversation?: string; before?: Id; limit?: number }, { messages: Message[]; next_before: Id | null }];
  'message.sync': [{ since: Id; limit?: number }, { messages: Message[]; more: boolean; next: Id }];
  'conversation.list': [{ before?: Id; limit?: number }, { conversations: Conversation[]; next_before: Id | null; unread_total: number; unread_total_capped: boolean }];
  'group.create': [{ title: string; topic?: string; members?: string[] }, { group: Group; role: Role }];
  'group.get': [{ conversation: Id }, { group: Group; role: Role }];
  'group.update': [{ conversation: Id; title?: string; topic?: string }, { group: Group; role: Role }];
  'group.members': [{ conversation: Id; after?: Id; limit?: number }, { members: Member[]; next_after: Id | null }];
  'group.add': [{ conversation: Id; members: string[] }, { group: Group; members: User[] }];
  'group.remove': [{ conversation: Id; username: string }, MemberChange];
  'group.leave': [{ conversation: Id }, MemberChange];
  'group.role': [{ conversation: Id; username: string; role: Role }, { group: Group; role: Role; member: Member }];
  'conversation.read': [{ conversation: string; message_id: Id }, { conversation_id: string; read_up_to: Id; moved: boolean }];
  'change.sync': [{ after?: Id; limit?: number }, { changes: Change[]; more: boolean; next: Id }];
  'message.react': [{ conversation: string; message_id: Id; emoji: string }, { conversation_id: string; message_id: Id; reactions: Reaction[]; changed: boolean }];
  'message.unreact': [{ conversation: string; message_id: Id; emoji: string }, { conversation_id: string; message_id: Id; reactions: Reaction[]; changed: boolean }];
  'settings.get': [Record<string, never>, Settings];
  'settings.update': [Partial<Settings>, Settings];
  'push.config': [Record<string, never>, { vapid_public_key: string; gateway: boolean; max_devices: number }];
  'device.register': [{ platform: 'webpush' | 'gateway'; endpoint?: string; keys?: { p256dh: string; auth: string }; pushkey?: string; app_id?: string; data?: Record<string, unknown> }, { device: Device; created: boolean }];
  'device.list': [Record<string, never>, { devices: Device[] }];
  'device.remove': [{ device_id: Id }, Record<string, unknown>];
  'typing.start': [{ conversation: string }, { sent: boolean }];
  'typing.stop': [{ conversation: string }, { sent: boolean }];
  'user.block': [{ username: string }, { username: string; blocked: boolean; changed: boolean }];
  'user.unblock': [{ username: string }, { username: string; blocked: boolean; changed: boolean }];
  'user.blocks': [{ after?: string; limit?: number }, { users: User[]; next_after: string | null }];
  'conversation.mute': [{ conversation: string; until?: number }, { conversation_id: string; muted: boolean; muted_until: number | null }];
  'conversation.unmute': [{ conversation: string }, { conversation_id: string; muted: boolean; muted_until: number | null }];
  'report.create': [{ username?: string; conversation?: string; message_id?: Id; reason: string; details?: string }, { report_id: Id }];
  'presence.query': [{ usernames: string[] }, { users: Presence[] }];
  'presence.watch': [{ usernames: string[] }, { users: Presence[] }];
  'presence.unwatch': [{ usernames: string[] }, Record<string, never>];
  'ping': [Record<string, never>, Record<string, never>];
  'profile.get': [{ username: string }, { profile: Profile }];
  'profile.update': [{ display_name?: string | null; bio?: string | null; color?: string | null; avatar_url?: string | null }, { profile: Profile }];
  'user.search': [{ query: string; limit?: number }, { users: User[] }];
  'follow.add': [{ username: string }, { following: boolean; changed: boolean }];
  'follow.remove': [{ username: string }, { following: boolean; changed: boolean }];
  'follow.followers': [{ username: string; after?: Id; limit?: number }, { users: User[]; next_after: Id | null }];
  'follow.following': [{ username: string; after?: Id; limit?: number }, { users: User[]; next_after: Id | null }];
  'account.password': [{ old_password: string; new_password: string }, Record<string, never>];
  'account.delete': [{ password: string }, Record<string, never>];
  'post.create': [{ text: string }, { post: Post }];
  'post.get': [{ post_id: Id }, { post: Post }];
  'post.delete': [{ post_id: Id }, Record<string, never>];
  'post.like': [{ post_id: Id }, { post: Post }];
  'post.unlike': [{ post_id: Id }, { post: Post }];
  'post.repost': [{ post_id: Id }, { post: Post }];
  'post.unrepost': [{ post_id: Id }, { post: Post }];
  'timeline.home': [{ before?: Id; limit?: number }, { items: TimelineItem[]; next_before: Id | null }];
  'timeline.user': [{ username: string; before?: Id; limit?: number }, { items: TimelineItem[]; next_before: Id | null }];
}
export type Kind = keyof Requests;
export type Fields<K extends Kind> = Requests[K][0];
export type Reply<K extends Kind> = Requests[K][1];

/** Every pushed event: name -> data. `pos` is on the frame (see ServerEvent). */
export interface Events {
  'message.new': { message: Message };
  'message.updated': { message: Message };
  'message.deleted': { message: Message };
  'group.updated': { group: Group; by: User; member?: Member };
  'group.member_added': { group: Group; members: User[]; by: User };
  'group.member_removed': MemberChange;
  'conversation.read': { conversation_id: string; read_up_to: Id; change_id: Id };
  'message.read': { conversation_id: string; by: string; message_id: Id; change_id: Id };
  'message.reactions': { conversation_id: string; message_id: Id; change_id: Id; by: string; emoji: string; reacted: boolean; reactions: Reaction[] };
  'typing.start': { conversation_id: string; from: string; expires_in_ms: number };
  'typing.stop': { conversation_id: string; from: string };
  'profile.updated': { profile: Profile };
  'follow.new': { follower: User };
  'post.new': { item: TimelineItem };
  'post.liked': { post_id: Id; by: User; likes: number };
  'post.reposted': { post_id: Id; by: User; reposts: number };
  'sync.needed': { reason: 'gap' | 'epoch' | 'replay' };
  'presence.changed': Presence;
}
export type EventName = keyof Events;
/** An event frame as received. */
export interface ServerEvent<E extends EventName = EventName> { type: 'event'; event: E; data: Events[E]; pos?: Position }

/** Codes of protocol.md section 6, plus the client's own. */
export type ErrorCode =
  | 'bad_request' | 'unknown_type' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict'
  | 'rate_limited' | 'too_large' | 'limit_exceeded' | 'unavailable' | 'internal'
  | 'timeout' | 'disconnected' | 'overloaded' | 'outbox_full' | 'closed';

/** A failed request. */
export class HubbubError extends Error {
  constructor(code: ErrorCode, message?: string);
  readonly code: ErrorCode;
}

export type State = 'idle' | 'connecting' | 'authenticating' | 'online' | 'offline' | 'ended';
export interface CloseInfo { code: number; reason: string }
export interface OutboxEntry { nonce: string; to?: string; conversation?: string; text: string; reply_to?: Id; state: 'queued' | 'sending'; error: HubbubError | null }

/** Client-level events (besides every server event name of `Events`). */
export interface ClientEvents {
  /** Each message once (deduplicated by id), from events, sync and send replies; per conversation in id order. */
  message: [Message, { source: 'event' | 'sync' | 'sent' }];
  /** Every server event: name, data, the whole frame. */
  event: [EventName, Events[EventName], ServerEvent];
  state: [State];
  /** The socket is authenticated; `recovered` tells whether resume replayed what was missed. */
  authenticated: [{ user: User; recovered: boolean }];
  /** Authenticated and caught up (sync done when it was needed). */
  online: [{ recovered: boolean }];
  /** A message.sync pass completed; `cursor` is the new sync cursor (persist it). */
  synced: [{ reason: string; cursor: Id | null }];
  cursor: [Id];
  position: [Position];
  /** The tokens changed (login, refresh) or were dropped (null): persist them. */
  session: [Session | null];
  /** 4500-4999 (or a refused refresh token): the tokens are dead; log in again. */
  session_ended: [CloseInfo];
  /** 1002/1007: a client bug; no reconnect. */
  fatal: [CloseInfo];
  disconnected: [CloseInfo];
  outbox: [OutboxEntry[]];
  /** A queued message the server refused for good (e.g. forbidden, too_large). */
  send_failed: [Omit<OutboxEntry, 'state' | 'error'>, HubbubError];
  /** An error reply to no request (e.g. limit_exceeded at upgrade), or a failure during catch-up. */
  server_error: [{ code: string; message?: string }];
  handler_error: [unknown, string];
}
type Handler<A extends unknown[]> = (...args: A) => void;

export interface ClientOptions {
  /** ws:// or wss:// URL of /ws. */
  url: string;
  /** The WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: unknown;
  /** A session to start with (else sessionStore.load()). */
  session?: Session | null;
  /** Load/save the session (e.g. localStorage); load() is also read before each refresh, to adopt tokens another tab rotated. */
  sessionStore?: { load(): Session | null; save(s: Session | null): void };
  /** The last inbox position processed, to resume from. */
  position?: Position | null;
  /** The message.sync cursor to continue from. */
  syncCursor?: Id | null;
  /** Where the first sync starts when there is no cursor (default "0": everything). */
  initialCursor?: () => Id | Promise<Id>;
  /** Called with every frame sent or received (parsed). */
  onFrame?: (dir: 'send' | 'recv', frame: unknown) => void;
  requestTimeoutMs?: number;   // 15000
  backoffMinMs?: number;       // 250
  backoffMaxMs?: number;       // 8000
  abusePauseMs?: number;       // 5000, after close 4003
  refreshMarginMs?: number;    // 60000 before expiry
  heartbeatMs?: number;        // 25000; 0 disables the ping heartbeat
  maxPending?: number;         // 256 requests in flight
  maxOutbox?: number;          // 500 unsent messages
  maxSeenIds?: number;         // 10000 ids remembered for dedupe
  maxBuffered?: number;        // 1000 live messages held during a sync
  maxFrameBytes?: number;      // 65536
  syncPageSize?: number;       // 200
  retryDelayMs?: number;       // 2000
}

type Method<K extends Kind> = (fields: Fields<K>, opts?: { timeoutMs?: number }) => Promise<Reply<K>>;

export class HubbubClient {
  constructor(options: ClientOptions);
  readonly state: State;
  readonly session: Session | null;
  readonly user: User | null;
  readonly position: Position | null;
  readonly syncCursor: Id | null;
  readonly outbox: OutboxEntry[];

  on<E extends keyof ClientEvents>(name: E, fn: Handler<ClientEvents[E]>): () => void;
  on<E extends EventName>(name: E, fn: (data: Events[E], frame: ServerEvent<E>) => void): () => void;
  once<E extends keyof ClientEvents>(name: E, fn: Handler<ClientEvents[E]>): () => void;
  once<E extends EventName>(name: E, fn: (data: Events[E], frame: ServerEvent<E>) => void): () => void;
  off(name: string, fn: (...args: any[]) => void): void;

  /** Opens the socket and authenticates with the session; reconnects until close(). */
  connect(): void;
  /** Closes for good; no reconnect. */
  close(): void;
  register(fields: Fields<'auth.register'>): Promise<AuthReply>;
  login(fields: Fields<'auth.login'>): Promise<AuthReply>;
  logout(): Promise<void>;
  refresh(): Promise<AuthReply>;
  /** Any request kind; resolves with reply data, rejects with HubbubError. */
  request<K extends Kind>(type: K, fields?: Fields<K>, opts?: { timeoutMs?: number }): Promise<Reply<K>>;
  /** Queues a message with a nonce; resolves with the stored message (exactly once, across reconnects). */
  sendMessage(fields: Omit<Fields<'message.send'>, 'nonce'> & { nonce?: string }): Promise<Message>;
  setSyncCursor(cursor: Id | null): void;
  markSeen(id: Id): void;

  messageEdit: Method<'message.edit'>;
  messageDelete: Method<'message.delete'>;
  messageHistory: Method<'message.history'>;
  messageSync: Method<'message.sync'>;
  conversationList: Method<'conversation.list'>;
  groupCreate: Method<'group.create'>;
  groupGet: Method<'group.get'>;
  groupUpdate: Method<'group.update'>;
  groupMembers: Method<'group.members'>;
  groupAdd: Method<'group.add'>;
  groupRemove: Method<'group.remove'>;
  groupLeave: Method<'group.leave'>;
  groupRole: Method<'group.role'>;
  conversationRead: Method<'conversation.read'>;
  changeSync: Method<'change.sync'>;
  messageReact: Method<'message.react'>;
  messageUnreact: Method<'message.unreact'>;
  settingsGet: Method<'settings.get'>;
  settingsUpdate: Method<'settings.update'>;
  pushConfig: Method<'push.config'>;
  deviceRegister: Method<'device.register'>;
  deviceList: Method<'device.list'>;
  deviceRemove: Method<'device.remove'>;
  typingStart: Method<'typing.start'>;
  typingStop: Method<'typing.stop'>;
  userBlock: Method<'user.block'>;
  userUnblock: Method<'user.unblock'>;
  userBlocks: Method<'user.blocks'>;
  conversationMute: Method<'conversation.mute'>;
  conversationUnmute: Method<'conversation.unmute'>;
  reportCreate: Method<'report.create'>;
  presenceQuery: Method<'presence.query'>;
  presenceWatch: Method<'presence.watch'>;
  presenceUnwatch: Method<'presence.unwatch'>;
  ping: Method<'ping'>;
  profileGet: Method<'profile.get'>;
  profileUpdate: Method<'profile.update'>;
  userSearch: Method<'user.search'>;
  followAdd: Method<'follow.add'>;
  followRemove: Method<'follow.remove'>;
  followFollowers: Method<'follow.followers'>;
  followFollowing: Method<'follow.following'>;
  accountPassword: Method<'account.password'>;
  accountDelete: Method<'account.delete'>;
  postCreate: Method<'post.create'>;
  postGet: Method<'post.get'>;
  postDelete: Method<'post.delete'>;
  postLike: Method<'post.like'>;
  postUnlike: Method<'post.unlike'>;
  postRepost: Method<'post.repost'>;
  postUnrepost: Method<'post.unrepost'>;
  timelineHome: Method<'timeline.home'>;
  timelineUser: Method<'timeline.user'>;
}

/** Compares two id strings numerically (length first). */
export function cmpId(a: Id, b: Id): number;
export function maxId(a: Id | null, b: Id | null): Id | null;
/** What to do after close code `code`: protocol.md section 7. */
export function closeAction(code: number): 'reconnect' | 'pause' | 'relogin' | 'stop';
export function newNonce(prefix?: string): string;
export const KINDS: readonly Kind[];
export function methodName(kind: Kind): string;
export class Emitter {
  on(name: string, fn: (...args: any[]) => void): () => void;
  once(name: string, fn: (...args: any[]) => void): () => void;
  off(name: string, fn: (...args: any[]) => void): void;
  emit(name: string, ...args: unknown[]): void;
}
export class BoundedSet {
  constructor(max: number);
  has(id: string): boolean;
  add(id: string): boolean;
  clear(): void;
  readonly size: number;
}
