"""``python -m course_tools.grading {release,check-release,grade} ...``"""

import sys

from course_tools.grading.cli import main

sys.exit(main())
