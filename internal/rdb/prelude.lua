-- prelude.lua, put before every script that writes (rdb.ScriptPrelude).
--
-- refuse(steps) asks, before a script's first write, whether the server's
-- Redis user may run each step: {command, arg…}, with the keys and
-- channels it would touch. It returns a NOPERM error reply naming the first
-- step refused, or nil. A script calls it before writing anything, so a
-- missing right (a channel the user may not publish to, say) never leaves
-- part of its work written: a script does not roll back. Redis before 7.0
-- and the embedded Redis have no redis.acl_check_cmd, and no ACL to check.
local function refuse(steps)
  if not redis.acl_check_cmd then
    return nil
  end
  for i = 1, #steps do
    local s = steps[i]
    if not redis.acl_check_cmd(unpack(s)) then
      local what = 'key '
      if s[1] == 'publish' or s[1] == 'spublish' then
        what = 'channel '
      end
      return redis.error_reply('NOPERM mcp-redis: it may not run ' .. string.upper(s[1]) .. ' on ' .. what .. s[2] ..
        '; nothing was written')
    end
  end
  return nil
end

