-- The masks of personal data shown to roles without the right to it (resolvers.access decides who
-- sees what). History: migration 0007.

-- 张三 → 张*, 阿西木呷 → 阿***; the first character stays, every other one becomes *.
CREATE OR REPLACE FUNCTION anju_mask_name(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN v IS NULL THEN NULL
                    ELSE left(v, 1) || repeat('*', greatest(char_length(v) - 1, 1)) END $$;

-- 13812345678 → 138****5678; shorter numbers keep only their last 4 characters.
CREATE OR REPLACE FUNCTION anju_mask_phone(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN v IS NULL THEN NULL
                    WHEN char_length(v) >= 11 THEN left(v, 3) || repeat('*', char_length(v) - 7) || right(v, 4)
                    ELSE repeat('*', greatest(char_length(v) - 4, 0)) || right(v, 4) END $$;
