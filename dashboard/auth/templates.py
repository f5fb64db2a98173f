"""The access layer's own pages (sign-in, errors, admin), plain HTML rendered by Flask (Jinja escapes every value),
styled with the app's CSS (assets/theme.css, assets/access.css), in English and Chinese."""
from __future__ import annotations

from dashboard.theme import css_variables

TEXT = {
    "title": ("Sign in", "登录"),
    "name": ("Account", "账号"),
    "password": ("Password", "密码"),
    "submit": ("Sign in", "登录"),
    "wrong": ("Wrong account or password.", "账号或密码错误。"),
    "locked": ("Too many failed sign-ins: try again in {minutes} min.", "登录失败次数过多：请 {minutes} 分钟后再试。"),
    "expired": ("Your session ended after a time without use; sign in again.", "会话因长时间未操作已结束，请重新登录。"),
    "device_refused": ("This device token is unknown or was revoked.", "设备令牌无效或已吊销。"),
    "refused": ("Refused", "拒绝访问"),
    "sso": ("Sign in with the city's single sign-on", "使用统一身份认证登录"),
    "or": ("or with an account of this dashboard:", "或使用本系统账号："),
    "not_found": ("Not found", "未找到"),
    "back": ("Back to the map", "返回地图"),
    "sign_out": ("Sign out", "退出登录"),
    "accounts": ("Accounts", "账号管理"),
    "devices": ("Wall screens (device tokens)", "大屏设备令牌"),
    "audit": ("Audit trail", "审计日志"),
    "roles": ("Roles", "角色"),
    "scope": ("Scope (unit code, empty: the city)", "范围（单元代码，空为全市）"),
    "departments": ("Departments (comma list, empty: all)", "部门（逗号分隔，空为全部）"),
    "create": ("Create", "创建"),
    "created": ("Account {name} created.", "已创建账号 {name}。"),
    "new_password": ("Its password (shown once):", "初始密码（仅显示一次）："),
    "active": ("Active", "启用"),
    "disable": ("Disable", "停用"),
    "enable": ("Enable", "启用"),
    "device_name": ("Screen name", "屏幕名称"),
    "token": ("Give this link to the screen (shown once):", "请将此链接配置到大屏（仅显示一次）："),
    "revoke": ("Revoke", "吊销"),
    "revoked": ("Token revoked.", "令牌已吊销。"),
    "api_keys": ("Open311 API keys", "Open311 接口密钥"),
    "key_name": ("Application (whose key)", "应用（密钥持有方）"),
    "channel": ("Intake channel", "受理渠道"),
    "per_minute": ("POSTs a minute (empty: the server's default, {default})",
                   "每分钟提交次数（空：服务器默认值 {default}）"),
    "key_shown": ("Give this key to the application (shown once):", "请将此密钥交给应用（仅显示一次）："),
    "key_revoked": ("Key revoked.", "密钥已吊销。"),
    "search": ("Search", "搜索"),
    "csv": ("CSV", "导出 CSV"),
    "when": ("When", "时间"), "who": ("Who", "操作人"), "from": ("From", "来源"), "what": ("Action", "操作"),
    "target": ("Target", "对象"), "outcome": ("Outcome", "结果"), "detail": ("Detail", "详情"),
}


def text(key: str, lang: str) -> str:
    english, chinese = TEXT[key]
    return chinese if lang == "zh" else english


HEAD = """<!doctype html><html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>citytwin · {{ title }}</title>
<link rel="icon" href="/_favicon.ico"><link rel="stylesheet" href="/assets/theme.css"><link rel="stylesheet" href="/assets/access.css">
<style>""" + css_variables() + """</style></head><body class="access-page">"""

SIGN_IN_PAGE = HEAD.replace("{{ title }}", "{{ t('title') }}") + """
<main class="access-card" id="sign-in">
  <div class="brand-name">citytwin</div>
  <h1>{{ t('title') }}</h1>
  <nav class="access-lang"><a href="/login?lang=en&amp;next={{ next|urlencode }}">EN</a> |
    <a href="/login?lang=zh&amp;next={{ next|urlencode }}">中文</a></nav>
  {% if message %}<p class="access-message" id="sign-in-message" role="alert">{{ message }}</p>{% endif %}
  {% if sso %}<p><a class="action-button" id="sso-button" href="/login/sso?lang={{ lang }}&amp;next={{ next|urlencode }}">
    {{ t('sso') }}</a></p><p class="muted">{{ t('or') }}</p>{% endif %}
  <form method="post" action="/login" class="access-form">
    <input type="hidden" name="next" value="{{ next }}"><input type="hidden" name="lang" value="{{ lang }}">
    <label for="name">{{ t('name') }}</label>
    <input id="name" name="name" autocomplete="username" required maxlength="64" class="form-input" autofocus>
    <label for="password">{{ t('password') }}</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"
      class="form-input">
    <button type="submit" class="action-button" id="sign-in-button">{{ t('submit') }}</button>
  </form>
</main></body></html>"""

ERROR_PAGE = HEAD.replace("{{ title }}", "{{ status }}") + """
<main class="access-card access-error" id="error-page" data-status="{{ status }}">
  <div class="brand-name">citytwin</div>
  <h1>{{ status }} · {{ t('not_found') if status == 404 else t('refused') }}</h1>
  <p id="error-reason">{{ reason }}</p>
  <p><a href="/">{{ t('back') }}</a>{% if not signed_in %} · <a href="/login">{{ t('title') }}</a>{% endif %}</p>
</main></body></html>"""

ADMIN_NAV = """<nav class="access-nav"><span class="brand-name">citytwin</span>
  <a href="/admin/accounts">{{ t('accounts') }}</a> <a href="/admin/devices">{{ t('devices') }}</a>
  <a href="/admin/api-keys">{{ t('api_keys') }}</a>
  <a href="/admin/audit">{{ t('audit') }}</a> <a href="/">{{ t('back') }}</a>
  <form method="post" action="/logout" class="access-inline"><button class="action-button">{{ t('sign_out') }}</button>
  </form></nav>"""

ACCOUNTS_PAGE = HEAD.replace("{{ title }}", "{{ t('accounts') }}") + ADMIN_NAV + """
<main class="access-wide" id="accounts-page"><h1>{{ t('accounts') }}</h1>
  {% if message %}<p class="access-message" id="accounts-message" role="status">{{ message }}</p>{% endif %}
  {% if new_password %}<p>{{ t('new_password') }} <code id="new-password">{{ new_password }}</code></p>{% endif %}
  <table class="access-table" id="accounts-table"><thead><tr><th>{{ t('name') }}</th><th>{{ t('roles') }}</th>
    <th>{{ t('scope') }}</th><th>{{ t('departments') }}</th><th>{{ t('active') }}</th><th></th></tr></thead><tbody>
  {% for row in rows %}<tr data-name="{{ row.name }}"><td>{{ row.name }}</td><td>{{ row.roles }}</td>
    <td>{{ row.scope or '' }}</td><td>{{ row.departments }}</td><td>{{ '✓' if row.active else '—' }}</td>
    <td>{% if row.name != me %}<form method="post" action="/admin/accounts/{{ row.name|urlencode }}" class="access-inline">
      <input type="hidden" name="active" value="{{ '0' if row.active else '1' }}">
      <button class="action-button">{{ t('disable') if row.active else t('enable') }}</button></form>{% endif %}</td>
  </tr>{% endfor %}</tbody></table>
  <h2>{{ t('create') }}</h2>
  <form method="post" action="/admin/accounts" class="access-form" id="create-account">
    <label for="new-name">{{ t('name') }}</label><input id="new-name" name="name" required maxlength="64" class="form-input">
    <label for="new-password">{{ t('password') }}</label>
    <input id="new-password-input" name="password" type="password" maxlength="1024" class="form-input">
    <fieldset><legend>{{ t('roles') }}</legend>{% for role in roles %}
      <label><input type="checkbox" name="roles" value="{{ role }}"> {{ role }}</label>{% endfor %}</fieldset>
    <label for="new-scope">{{ t('scope') }}</label><input id="new-scope" name="scope" maxlength="64" class="form-input">
    <label for="new-departments">{{ t('departments') }}</label>
    <input id="new-departments" name="departments" maxlength="2000" class="form-input">
    <button type="submit" class="action-button">{{ t('create') }}</button>
  </form></main></body></html>"""

DEVICES_PAGE = HEAD.replace("{{ title }}", "{{ t('devices') }}") + ADMIN_NAV + """
<main class="access-wide" id="devices-page"><h1>{{ t('devices') }}</h1>
  {% if message %}<p class="access-message" role="status">{{ message }}</p>{% endif %}
  {% if token %}<p>{{ t('token') }} <code id="device-link">{{ host }}/device/{{ token }}</code></p>{% endif %}
  <table class="access-table" id="devices-table"><thead><tr><th>id</th><th>{{ t('device_name') }}</th>
    <th>{{ t('scope') }}</th><th>{{ t('who') }}</th><th></th></tr></thead><tbody>
  {% for row in rows %}<tr data-token="{{ row.token_id }}"><td>{{ row.token_id }}</td><td>{{ row.name }}</td>
    <td>{{ row.scope or '' }}</td><td>{{ row.created_by }}</td>
    <td>{% if row.revoked_at %}{{ t('revoked') }}{% else %}<form method="post" class="access-inline">
      <input type="hidden" name="revoke" value="{{ row.token_id }}"><button class="action-button">{{ t('revoke') }}</button>
      </form>{% endif %}</td></tr>{% endfor %}</tbody></table>
  <form method="post" class="access-form" id="create-device">
    <label for="device-name">{{ t('device_name') }}</label><input id="device-name" name="name" maxlength="200" class="form-input">
    <label for="device-scope">{{ t('scope') }}</label><input id="device-scope" name="scope" maxlength="64" class="form-input">
    <button type="submit" class="action-button">{{ t('create') }}</button></form></main></body></html>"""

API_KEYS_PAGE = HEAD.replace("{{ title }}", "{{ t('api_keys') }}") + ADMIN_NAV + """
<main class="access-wide" id="api-keys-page"><h1>{{ t('api_keys') }}</h1>
  {% if message %}<p class="access-message" id="api-keys-message" role="status">{{ message }}</p>{% endif %}
  {% if key %}<p>{{ t('key_shown') }} <code id="new-api-key">{{ key }}</code></p>{% endif %}
  <table class="access-table" id="api-keys-table"><thead><tr><th>id</th><th>{{ t('key_name') }}</th>
    <th>{{ t('channel') }}</th><th>{{ t('per_minute').split(' (')[0].split('（')[0] }}</th><th>{{ t('who') }}</th>
    <th></th></tr></thead><tbody>
  {% for row in rows %}<tr data-key="{{ row.key_id }}"><td>{{ row.key_id }}</td><td>{{ row.name }}</td>
    <td>{{ row.channel }}</td><td>{{ row.posts_per_minute or default }}</td><td>{{ row.created_by }}</td>
    <td>{% if row.revoked_at %}{{ t('revoked') }}{% else %}<form method="post" class="access-inline">
      <input type="hidden" name="revoke" value="{{ row.key_id }}"><button class="action-button">{{ t('revoke') }}</button>
      </form>{% endif %}</td></tr>{% endfor %}</tbody></table>
  <h2>{{ t('create') }}</h2>
  <form method="post" class="access-form" id="create-api-key">
    <label for="key-name">{{ t('key_name') }}</label><input id="key-name" name="name" required maxlength="200" class="form-input">
    <label for="key-channel">{{ t('channel') }}</label><select id="key-channel" name="channel" class="form-input">
      {% for code, label in channels %}<option value="{{ code }}"{% if code == 'website' %} selected{% endif %}>{{ label }}</option>{% endfor %}
    </select>
    <label for="key-limit">{{ t('per_minute').format(default=default) }}</label>
    <input id="key-limit" name="posts_per_minute" inputmode="numeric" maxlength="6" class="form-input">
    <button type="submit" class="action-button">{{ t('create') }}</button></form></main></body></html>"""

AUDIT_PAGE = HEAD.replace("{{ title }}", "{{ t('audit') }}") + ADMIN_NAV + """
<main class="access-wide" id="audit-page"><h1>{{ t('audit') }}</h1>
  <form method="get" class="access-filters">
    <input name="actor" value="{{ args.get('actor', '') }}" placeholder="{{ t('who') }}" class="form-input" maxlength="200">
    <input name="action" value="{{ args.get('action', '') }}" placeholder="{{ t('what') }}" class="form-input" maxlength="64">
    <input name="q" value="{{ args.get('q', '') }}" placeholder="{{ t('target') }}" class="form-input" maxlength="200">
    <button class="action-button">{{ t('search') }}</button> <a href="{{ csv_href }}" id="audit-csv">{{ t('csv') }}</a>
  </form>
  <table class="access-table" id="audit-table"><thead><tr><th>{{ t('when') }}</th><th>{{ t('who') }}</th>
    <th>{{ t('from') }}</th><th>{{ t('what') }}</th><th>{{ t('target') }}</th><th>{{ t('outcome') }}</th>
    <th>{{ t('detail') }}</th></tr></thead><tbody>
  {% for row in rows %}<tr class="audit-row outcome-{{ row.outcome }}" data-action="{{ row.action }}">
    <td>{{ row.when }}</td><td>{{ row.actor }}</td><td>{{ row.address }}</td><td>{{ row.action }}</td>
    <td>{{ row.target }}</td><td>{{ row.outcome }}</td><td>{{ row.detail }}</td></tr>{% endfor %}
  </tbody></table></main></body></html>"""
