-- Where each automation's time and sun triggers were last dealt with (ms):
-- written by the leading hub whenever one comes due (fired, blocked or
-- switched off). A hub that starts or takes over resumes from here (or
-- from `updated_at`, whichever is later), so a trigger that came due while
-- no hub ran fires late within `hub.automation_catch_up_s` or is recorded
-- missed, as chimes are.
ALTER TABLE automations ADD COLUMN timers_until BIGINT;
