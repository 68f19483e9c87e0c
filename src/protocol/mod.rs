pub mod msg_id;
