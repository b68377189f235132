"""A light, calm look on top of Qt's Fusion style."""
STYLESHEET = """
QMainWindow, QWidget { font-size: 10pt; }
QTabBar::tab { padding: 7px 18px; }
QTabBar::tab:selected { font-weight: bold; }
QGroupBox { font-weight: bold; border: 1px solid #d0d4da; border-radius: 6px;
            margin-top: 10px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; }
QPushButton { padding: 5px 12px; }
QPushButton#primary { background: #2563eb; color: white; border-radius: 4px;
                      font-weight: bold; padding: 6px 14px; }
QPushButton#primary:disabled { background: #9db5e8; }
QPlainTextEdit { background: #fbfbfc; }
QLabel#note { background: #fff8e1; border: 1px solid #f0d48a; border-radius: 6px;
              padding: 8px; color: #4a3b00; }
QLabel#dropHint { border: 2px dashed #9aa7bd; border-radius: 10px; padding: 28px;
                  color: #4a5568; font-size: 12pt; background: #f6f8fb; }
"""
