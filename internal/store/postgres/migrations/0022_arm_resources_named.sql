-- ResourcesNamed (a namespace or vault found by its globally unique
-- name, on every AMQP connection and data-plane request that names it)
-- read the whole of arm_resources: no index led with type_key, and the
-- name was matched as a suffix of id_key. This index holds, per type,
-- the last length(name) characters of id_key, which is the name folded
-- as id_key is (the name is the id's last segment, and folding keeps the
-- number of characters), and the query asks for exactly that expression.
CREATE INDEX arm_resources_named ON arm_resources (type_key, substr(id_key, length(id_key) - length(name) + 1));
