include $(sort $(wildcard $(BR2_EXTERNAL_WGSPLIT_PATH)/package/*/*.mk))
